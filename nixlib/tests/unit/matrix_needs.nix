# needs may name a matrix family: the name given to mkMatrixJobs, which no
# job carries itself, stands for all the jobs it made (each once, also
# when one of them is named too), and only those: test-e2e, a job of its
# own that needs deploy, is no member (it would make a cycle).
let
  support = import ../support { };
  inherit (support.lib) mkWorkflow mkMatrixJobs;
  ok = [ { bash = "true"; } ];
  w = mkWorkflow {
    name = "family";
    jobs = mkMatrixJobs { name = "test"; matrix.os = [ "a" "b" ]; jobTemplate = c: { steps = ok; }; } // {
      deploy = { needs = [ "test" "test-os-a" ]; steps = ok; };
      test-e2e = { needs = [ "deploy" ]; steps = ok; };
    };
  };
in
w.plan.jobs.deploy.needs
