# Workflows from the seed library's README (nixactions), ported by changing
# the import only: the three-level ci.nix, env at three levels, job and
# step conditions, continueOnError, executors with options, nixShell,
# sopsLoad and requireEnv.
let
  nixactions = (import ./support { }).lib;
in
(nixactions.mkWorkflow {
  name = "ci";
  env = {
    PROJECT = "myapp";
  };
  jobs = {
    # Runs immediately (Level 0)
    lint = {
      executor = nixactions.executors.local;
      steps = [
        { bash = "npm run lint"; }
      ];
    };
    # Runs after lint succeeds (Level 1)
    test = {
      needs = [ "lint" ];
      executor = nixactions.executors.local;
      steps = [
        { bash = "npm test"; }
      ];
    };
    # Runs after test succeeds (Level 2)
    build = {
      needs = [ "test" ];
      executor = nixactions.executors.oci {
        image = "nixos/nix";
        name = "test-env";
      };
      steps = [
        { bash = "npm run build"; }
      ];
    };
    api-test = {
      executor = nixactions.executors.local {
        copyRepo = false;
        name = "build-env";
      };
      steps = [
        (nixactions.actions.nixShell [ "curl" "jq" ])
        {
          bash = ''
            curl -s https://api.github.com/rate_limit | jq '.rate'
          '';
        }
      ];
    };
    deploy = {
      needs = [ "build" ];
      condition = ''[ "$BRANCH" = "main" ]'';
      env = {
        ENVIRONMENT = "production";
      };
      steps = [
        (nixactions.actions.sopsLoad {
          file = "secrets.sops.yaml";
        })
        (nixactions.actions.requireEnv [
          "API_KEY"
          "DB_PASSWORD"
        ])
        {
          env = {
            LOG_LEVEL = "debug";
          };
          bash = "deploy.sh";
        }
        {
          name = "notify";
          condition = "always()";
          bash = "curl -X POST $WEBHOOK";
        }
      ];
    };
    rollback = {
      needs = [ "deploy" ];
      condition = "failure()";
      continueOnError = true;
      steps = [ { bash = "./rollback.sh"; } ];
    };
  };
}).plan
