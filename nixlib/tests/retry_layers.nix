# compiler/testdata/retry_layers.txtar written with the library: retry and
# timeout layers, both retry spellings, and the difference between a field
# not written (inherits) and null (turns the setting off on its layer).
let
  inherit (import ./support { }) lib;
in
(lib.mkWorkflow {
  name = "retry";
  retry = { max_attempts = 3; min_time = 2; };
  timeout = 600;
  jobs = {
    a = {
      retry = { backoff = "linear"; };
      steps = [
        { name = "inherits"; bash = "true"; }
        { name = "own"; bash = "true"; retry = { maxAttempts = 5; maxTime = 10; }; timeout = "1h30m"; }
        { name = "off"; bash = "true"; retry = null; }
        { name = "fraction"; bash = "true"; timeout = 0.5; }
      ];
    };
    b = {
      retry = null;
      timeout = null;
      steps = [
        { name = "none"; bash = "true"; }
        { name = "again"; bash = "true"; retry = { maxAttempts = 2; }; }
      ];
    };
  };
}).plan
