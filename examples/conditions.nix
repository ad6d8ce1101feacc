# conditions.nix: when jobs and steps run: success(), failure(), always(),
# cancelled(), bash conditions, and continueOnError.
#
#   nixflow run examples/conditions.nix
#
# A job's condition looks at the jobs it NEEDS; a step's condition looks at
# the EARLIER STEPS of its job:
#
#   success()   (the default) nothing before it failed
#   failure()   something before it failed
#   always()    always
#   cancelled() the run was cancelled (Ctrl-C); skipped in this example
#   CMD         any bash: success() holds and CMD exits 0
#   always() && CMD, failure() && CMD, cancelled() && CMD
#
# A failure with continueOnError = true is shown as "failed (allowed)" and
# counts as a success: for the later steps (on a step), for the jobs that
# need it and for the exit status (on a job). This example fails on purpose
# but exits with status 0: the job `checks` fails a step, which fails the
# job, and the job is allowed to fail. For the same reason a job with
# failure() after it is skipped: to see one run, remove continueOnError
# from `checks` (and the run exits with status 1).
#
# Whatever must not run prints "never printed"; a skipped step prints
# nothing, a skipped job prints why.
{ nixflow, pkgs ? null, ... }:
let
  local = nixflow.executors.local { copyRepo = false; };
in
nixflow.mkWorkflow {
  name = "conditions";
  env.BRANCH = "main";
  jobs = {
    checks = {
      executor = local;
      continueOnError = true; # the job fails (see "fails"), allowed
      steps = [
        { name = "optional"; bash = "echo 'optional check failed'; exit 3"; continueOnError = true; }
        { name = "after-optional"; bash = "echo 'runs: an allowed failure counts as success'"; }
        { name = "if-main"; condition = ''[ "$BRANCH" = main ]''; bash = "echo 'runs: the bash condition exited 0'"; }
        { name = "if-release"; condition = ''[ "$BRANCH" = release ]''; bash = "echo 'never printed: the bash condition exited 1'"; }
        { name = "fails"; bash = "echo 'this check fails'; exit 1"; }
        { name = "next"; bash = "echo 'never printed: a step before failed'"; }
        { name = "on-failure"; condition = "failure()"; bash = "echo 'runs: failure() after a failed step'"; }
        { name = "on-always"; condition = "always()"; bash = "echo 'runs: always()'"; }
        { name = "on-cancel"; condition = "cancelled()"; bash = "echo 'never printed: not cancelled'"; }
        { name = "bash-only"; condition = "true"; bash = "echo 'never printed: a bash condition implies success()'"; }
        { name = "failure-and-bash"; condition = ''failure() && [ "$BRANCH" = main ]''; bash = "echo 'runs: failure() && bash'"; }
      ];
    };

    # The jobs below need `checks`, which failed but was allowed to.
    after-checks = {
      executor = local;
      needs = [ "checks" ];
      steps = [ { name = "s"; bash = "echo 'runs: checks failed (allowed), which counts as success'"; } ];
    };
    on-failure = {
      executor = local;
      needs = [ "checks" ];
      condition = "failure()";
      steps = [ { name = "s"; bash = "echo 'never printed: no job it needs failed'"; } ];
    };
    on-always = {
      executor = local;
      needs = [ "checks" ];
      condition = "always()";
      steps = [ { name = "s"; bash = "echo 'runs: always()'"; } ];
    };
    on-cancel = {
      executor = local;
      needs = [ "checks" ];
      condition = "cancelled()";
      steps = [ { name = "s"; bash = "echo 'never printed: not cancelled'"; } ];
    };

    # Bash conditions run before the job starts, with the job's environment.
    on-main = {
      executor = local;
      condition = ''[ "$BRANCH" = main ]'';
      steps = [ { name = "s"; bash = ''echo "runs: BRANCH is $BRANCH"''; } ];
    };
    on-release = {
      executor = local;
      condition = ''[ "$BRANCH" = release ]'';
      steps = [ { name = "s"; bash = "echo 'never printed: BRANCH is not release'"; } ];
    };
    # Skips cascade: a success() job whose need was skipped is skipped.
    after-release = {
      executor = local;
      needs = [ "on-release" ];
      steps = [ { name = "s"; bash = "echo 'never printed: on-release was skipped'"; } ];
    };
  };
}
