{ nixflow, ... }:
let
  range = n: builtins.genList (i: toString i) n;
in
nixflow.mkWorkflow {
  name = "matrix-1000";
  jobs = nixflow.mkMatrixJobs {
    name = "t";
    matrix = { a = range 10; b = range 10; c = range 10; };
    jobTemplate = { a, b, c }: {
      executor = nixflow.executors.local { copyRepo = false; };
      env = { A = a; B = b; C = c; };
      retry = { maxAttempts = 2; };
      steps = [ { name = "s"; bash = "echo ${a}${b}${c}"; } { bash = "true"; timeout = "1m"; } ];
    };
  };
}
