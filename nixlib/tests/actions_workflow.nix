# Every action in one workflow, twice: without pkgs (tools checked on the
# executor's PATH) and with a stand-in pkgs (tools as deps, put on
# $JOB_PATH for later steps).
let
  support = import ./support { };
  withPkgs = (import ./support { pkgs = support.fakePkgs; }).lib.actions;
  steps = a: [
    a.checkout
    (a.nixShell [ "jq" "python3Packages.pytest" ])
    (a.setupNode { version = "20"; })
    (a.setupPython { version = "3.11"; })
    a.setupRust
    a.npmInstall
    a.npmTest
    a.npmBuild
    a.npmLint
    (a.sopsLoad { file = "secrets.sops.yaml"; })
    (a.requireEnv [ "API_KEY" "DB_PASSWORD" ])
  ];
in
(support.lib.mkWorkflow {
  name = "actions";
  jobs = {
    host-tools.steps = steps support.lib.actions;
    pinned-tools.steps = steps withPkgs;
  };
}).plan
