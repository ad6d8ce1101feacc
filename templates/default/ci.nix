# The CI pipeline of this project, run by nixflow:
#
#   nixflow run          runs it here (this file is found by default)
#   nixflow plan         shows what would run
#   nix run .#ci         the same through the flake
#   nix build .#ci       the pipeline as one bash script, `result`:
#                        ssh build-host < result   runs it there
#
# Each job runs in its own copy of the working tree; jobs start as soon as
# the jobs they need are done. Replace the steps with your own.
{ nixflow, pkgs ? null }:
nixflow.mkWorkflow {
  name = "ci";
  jobs = {
    lint = {
      steps = [
        { name = "files"; bash = ''echo "checking $(git ls-files 2>/dev/null | wc -l) tracked files"''; }
      ];
    };
    test = {
      steps = [
        { name = "unit"; bash = "echo 'run your tests here'"; }
      ];
    };
    build = {
      needs = [ "lint" "test" ];
      steps = [
        { name = "compile"; bash = "mkdir -p dist && date -u > dist/built-at && echo built"; }
      ];
      outputs = { dist = "dist"; };
    };
    report = {
      needs = [ "build" ];
      condition = "always()";
      steps = [
        { name = "summary"; bash = "echo 'pipeline finished'"; }
      ];
    };
  };
}
