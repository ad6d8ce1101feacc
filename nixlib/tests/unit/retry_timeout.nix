# Retry and timeout layers: a field not written stays absent (the layer
# inherits), an explicit null stays null (the layer turns it off), both
# retry spellings become camelCase, timeouts pass through as written.
let
  inherit (import ../support { }) lib;
  plan = w: (lib.mkWorkflow ({ name = "t"; } // w)).plan;
  one = step: (plan { jobs.j.steps = [ ({ bash = "true"; } // step) ]; }).jobs.j.steps;
  job = j: (plan { jobs.j = { steps = [ { bash = "true"; } ]; } // j; }).jobs.j;
in
{
  stepRetryAbsent = one { };
  stepRetryNull = one { retry = null; };
  stepRetryCamel = one { retry = { maxAttempts = 3; backoff = "linear"; minTime = 1; maxTime = 10; }; };
  stepRetrySnake = one { retry = { max_attempts = 3; backoff = "constant"; min_time = 0.5; max_time = 10; }; };
  stepRetryEmpty = one { retry = { }; };
  jobRetryNull = job { retry = null; };
  jobRetryAbsent = job { };
  jobTimeoutNull = job { timeout = null; };
  workflowAbsent = builtins.attrNames (plan { jobs.j.steps = [ { bash = "true"; } ]; });
  workflowNull = { inherit (plan { jobs.j.steps = [ { bash = "true"; } ]; retry = null; timeout = null; }) retry timeout; };
  timeouts = map (t: (builtins.head (one { timeout = t; })).timeout) [ 90 0.5 "90s" "5m" "1h30m" " 2h " "1.5h" "500ms" "10µs" ];
  stepTimeoutNull = one { timeout = null; };
}
