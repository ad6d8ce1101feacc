# mkMatrixJobs inside a workflow: GitHub's include/exclude rules, value
# stringification and sanitising, and a job that needs every matrix job.
let
  inherit (import ./support { }) lib;
  tests = lib.mkMatrixJobs {
    name = "test";
    matrix = {
      os = [ "ubuntu 22.04" "macos" ];
      node = [ 18 20 ];
      exclude = [ { os = "macos"; node = 18; } ];
      include = [
        { os = "ubuntu 22.04"; node = 20; coverage = true; }
        { os = "windows"; node = "20"; }
      ];
    };
    jobTemplate = { os, node, coverage ? false, ... }: {
      env = { NODE_VERSION = node; OS = os; COVERAGE = coverage; };
      steps = [ { bash = "npm test"; } ];
    };
  };
in
(lib.mkWorkflow {
  name = "matrix";
  jobs = tests // {
    report = {
      needs = builtins.attrNames tests;
      condition = "always()";
      steps = [ { bash = "echo done"; } ];
    };
  };
}).plan
