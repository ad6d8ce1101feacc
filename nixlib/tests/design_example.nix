# The example of the design brief, section 4, written with the library. It
# gives the graph of compiler/testdata/design_example.txtar (graph.json),
# except the dep of build's step: there it is a placeholder, here a real
# derivation (the stand-in `tool`), so its paths differ. run.sh compares
# the rest with the txtar itself.
let
  inherit (import ./support { }) lib tool;
  inherit (lib) mkWorkflow executors envProviders;
in
(mkWorkflow {
  name = "ci";
  env = { PROJECT = "demo"; };
  envFrom = [
    (envProviders.static { CI = "true"; })
    (envProviders.file { path = ".env"; required = false; })
    (envProviders.sops { file = "secrets.sops.yaml"; format = "yaml"; })
    (envProviders.command { command = "vault kv get -format=json ..."; })
    (envProviders.required [ "API_KEY" ])
  ];
  retry = { maxAttempts = 2; backoff = "exponential"; minTime = 1; maxTime = 60; };
  timeout = "30m";
  jobs = {
    build = {
      executor = executors.local { copyRepo = true; };
      steps = [ { name = "compile"; bash = "make"; deps = [ tool ]; } ];
      outputs = { bin = "out/app"; };
    };
    test = {
      executor = executors.oci { image = "localhost/ci:1"; runtime = "podman"; };
      needs = [ "build" ];
      inputs = [ "bin" { name = "bin"; path = "vendor/"; } ];
      steps = [ { bash = "make test"; timeout = 600; retry = null; } ];
    };
    deploy = {
      executor = executors.ssh {
        host = "deploy.example";
        port = 22;
        user = "ci";
        identityFile = "~/.ssh/ci";
        options = [ "StrictHostKeyChecking=accept-new" ];
      };
      needs = [ "test" ];
      condition = ''[ "$BRANCH" = main ]'';
      continueOnError = false;
      env = { TARGET = "prod"; };
      steps = [ { bash = "./deploy.sh"; } ];
    };
  };
}).plan
