# matrix.nix: one job per combination of values, with mkMatrixJobs.
#
#   nixflow run examples/matrix.nix
#   nixflow list examples/matrix.nix     # the generated jobs
#
# mkMatrixJobs { name, matrix, jobTemplate } expands the matrix when the
# workflow is evaluated, with GitHub Actions' rules:
#
#   os x go                          4 combinations
#   exclude { os = "darwin"; go = "1.25"; }  removes one
#   include { os = "linux"; go = "1.26"; race = true; }
#       matches an existing combination: adds race = true to it
#   include { os = "linux"; go = "1.27rc1"; experimental = true; }
#       matches none: added as a combination of its own
#
# Jobs are named <name>-<key>-<value>-... over the combination's keys,
# sorted:
#
#   test-go-1.25-os-linux
#   test-go-1.26-os-darwin
#   test-go-1.26-os-linux-race-true
#   test-experimental-true-go-1.27rc1-os-linux
#
# The result is an attribute set of jobs, so it merges with other jobs
# (`//`), and builtins.attrNames gives their names for `needs`.
{ nixflow, pkgs ? null, ... }:
let
  local = nixflow.executors.local { copyRepo = false; };

  tests = nixflow.mkMatrixJobs {
    name = "test";
    matrix = {
      os = [ "linux" "darwin" ];
      go = [ "1.25" "1.26" ];
      exclude = [ { os = "darwin"; go = "1.25"; } ];
      include = [
        { os = "linux"; go = "1.26"; race = true; }
        { os = "linux"; go = "1.27rc1"; experimental = true; }
      ];
    };
    # Called with each combination; keys only some combinations have
    # need a default.
    jobTemplate = { os, go, race ? false, experimental ? false }: {
      executor = local;
      # An experimental version may fail without failing the run.
      continueOnError = experimental;
      env = { GOOS = os; GO_VERSION = go; };
      steps = [
        {
          name = "test";
          bash = ''
            echo "testing with go $GO_VERSION on $GOOS${if race then " with -race" else ""}"
          '';
        }
      ];
    };
  };
in
nixflow.mkWorkflow {
  name = "matrix";
  jobs = tests // {
    report = {
      executor = local;
      needs = builtins.attrNames tests;
      steps = [
        {
          name = "summary";
          bash = ''echo "${toString (builtins.length (builtins.attrNames tests))} matrix jobs done: ${toString (builtins.attrNames tests)}"'';
        }
      ];
    };
  };
}
