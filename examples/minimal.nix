# minimal.nix: the smallest workflow, one job with one step.
#
#   nixflow run examples/minimal.nix
#
# A .nix workflow is a function that receives the nixflow library (and
# pkgs, null when nixpkgs is not available) and returns mkWorkflow's result.
# The job does not need the repository, so it starts in an empty directory
# (copyRepo = false) instead of a copy of the working tree.
{ nixflow, pkgs ? null, ... }:
nixflow.mkWorkflow {
  name = "minimal";
  jobs = {
    hello = {
      executor = nixflow.executors.local { copyRepo = false; };
      steps = [
        { name = "greet"; bash = ''echo "hello from $NIXFLOW_JOB"''; }
      ];
    };
  };
}
