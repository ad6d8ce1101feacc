# retry.nix: retrying flaky steps, with the three backoffs.
#
#   nixflow run examples/retry.nix
#
# A step is attempted up to maxAttempts times; the wait after failed
# attempt n is:
#
#   exponential (default)  min(maxTime, minTime * 2^(n-1))
#   linear                 min(maxTime, minTime * n)
#   constant               min(maxTime, minTime)
#
# minTime and maxTime are seconds. Retry is set on the workflow, a job or a
# step; the layers merge field by field (step over job over workflow), and
# `retry = null` turns retry off on a layer (one attempt). The delays here
# are tiny so that the example is fast; real ones are seconds.
#
# Every flaky step counts its attempts in a file of the job's workspace
# (the workspace stays the same across attempts) and succeeds on the 3rd.
{ nixflow, pkgs ? null, ... }:
let
  local = nixflow.executors.local { copyRepo = false; };

  # flaky NAME: fails until its 3rd attempt.
  flaky = name: ''
    n=$(( $(cat ${name}.count 2>/dev/null || echo 0) + 1 ))
    echo "$n" > ${name}.count
    if [ "$n" -lt 3 ]; then
      echo "${name}: attempt $n, failing"
      exit 1
    fi
    echo "${name}: attempt $n, succeeding"
  '';
in
nixflow.mkWorkflow {
  name = "retry";

  # Workflow level: the default for every step.
  retry = { maxAttempts = 3; backoff = "exponential"; minTime = 0.01; maxTime = 0.1; };

  jobs = {
    # Inherits the workflow's retry: waits 10ms, then 20ms.
    exponential = {
      executor = local;
      steps = [ { name = "flaky"; bash = flaky "exponential"; } ];
    };

    # Job level: only the backoff and minTime change; maxAttempts = 3 and
    # maxTime = 0.1 still come from the workflow. Waits 20ms, then 40ms.
    linear = {
      executor = local;
      retry = { backoff = "linear"; minTime = 0.02; };
      steps = [ { name = "flaky"; bash = flaky "linear"; } ];
    };

    # Step level, for one step only. The workflow's maxTime = 0.1 caps
    # the wait: minTime 0.5 gives 100ms, then 100ms.
    constant = {
      executor = local;
      steps = [
        { name = "flaky"; bash = flaky "constant"; retry = { backoff = "constant"; minTime = 0.5; }; }
        { name = "steady"; bash = "echo steady: no retry needed"; }
      ];
    };

    # retry = null: one attempt for this job's steps. A step may turn it
    # on again (the defaults fill what it does not say).
    no-retry = {
      executor = local;
      retry = null;
      steps = [
        {
          name = "once";
          bash = ''echo "once: failed, not retried"; exit 1'';
          continueOnError = true; # so that the run still succeeds
        }
        { name = "flaky"; bash = flaky "again"; retry = { maxAttempts = 3; minTime = 0.01; }; }
      ];
    };
  };
}
