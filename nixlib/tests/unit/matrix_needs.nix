# needs may name a matrix family: the name given to mkMatrixJobs, which no
# job carries itself, stands for all its jobs (each once, also when one of
# them is named too).
let
  support = import ../support { };
  inherit (support.lib) mkWorkflow mkMatrixJobs;
  ok = [ { bash = "true"; } ];
  w = mkWorkflow {
    name = "family";
    jobs = mkMatrixJobs { name = "test"; matrix.os = [ "a" "b" ]; jobTemplate = c: { steps = ok; }; } // {
      deploy = { needs = [ "test" "test-os-a" ]; steps = ok; };
    };
  };
in
w.plan.jobs.deploy.needs
