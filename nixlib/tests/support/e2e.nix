# The end-to-end check of run.sh: a workflow built into its runner with the
# stand-in pkgs and a nixflow package wrapping a real nixflow binary
# (nixflowBin), so that `nix-build -A drv` then `result/bin/e2e` runs it. It uses
# the actions' scripts for real, deps realised by building the runner, and
# $JOB_PATH / $JOB_ENV between steps.
{ nixflowBin }:
let
  support = import ./. { };
  nixflowPkg = builtins.derivation {
    name = "nixflow";
    inherit (support) system;
    builder = "/bin/sh";
    PATH = support.hostPath;
    bin = builtins.path { path = nixflowBin; name = "nixflow-bin"; };
    args = [ "-c" "mkdir -p $out/bin; ln -s $bin $out/bin/nixflow" ];
  };
  lib = (import ./. { pkgs = support.fakePkgs; nixflow = nixflowPkg; }).lib;
  inherit (lib) actions;
in
lib.mkWorkflow {
  name = "e2e";
  jobs = {
    tools.steps = [
      actions.checkout
      { name = "dep"; bash = "tool-echo hello-from-dep"; deps = [ support.tool ]; }
      (actions.setupNode { version = "20"; })
      { name = "node-later"; bash = "echo \"later: $(node --version)\""; }
      (actions.setupPython { version = "3.11"; })
      actions.setupRust
      (actions.sopsLoad { file = "secrets.sops.yaml"; })
      { name = "secret-later"; bash = ''[ "$API_KEY" = s3cret-value ] && echo "api key: $API_KEY"''; }
      (actions.requireEnv [ "API_KEY" ])
      ((actions.requireEnv [ "NOT_SET_ANYWHERE" ]) // { continueOnError = true; })
    ];
  } // lib.mkMatrixJobs {
    name = "m";
    matrix = { n = [ 1 2 ]; };
    jobTemplate = { n }: {
      needs = [ "tools" ];
      steps = [ { bash = "echo matrix-${toString n}"; } ];
    };
  };
}
