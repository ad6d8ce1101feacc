# env-sharing.nix: passing values between steps and between jobs.
#
#   nixflow run examples/env-sharing.nix
#
# Every step is its own bash process, so a plain `export` dies with it.
# Steps share values through files nixflow gives them:
#
#   $JOB_ENV     KEY=VALUE lines (or KEY<<DELIM ... DELIM for several
#                lines): exported to every LATER step of the same job
#   $JOB_PATH    one directory per line: put in front of PATH for later steps
#   $JOB_OUTPUT  KEY=VALUE lines: the job's outputs, seen by the jobs that
#                need it as NEEDS_<JOB>_<KEY> (upper-cased, other characters
#                turned into _: job build-info, key version ->
#                NEEDS_BUILD_INFO_VERSION)
#
# The files are parsed, never sourced. A step's own `env` applies to that
# step only.
{ nixflow, pkgs ? null, ... }:
let
  # Neither job needs the repository: start in an empty workspace.
  local = nixflow.executors.local { copyRepo = false; };
in
nixflow.mkWorkflow {
  name = "env-sharing";
  jobs = {
    build-info = {
      executor = local;
      steps = [
        {
          name = "set-env";
          bash = ''
            export LOST=1   # gone when this step's process ends
            echo "GREETING=hello from set-env" >> "$JOB_ENV"
            {
              echo "NOTES<<EOF"
              echo "first line"
              echo "second line"
              echo "EOF"
            } >> "$JOB_ENV"
          '';
        }
        {
          # A tool written by one step, on PATH for the later ones.
          name = "make-tool";
          bash = ''
            mkdir -p tools
            printf '#!/bin/sh\necho "$*" | tr a-z A-Z\n' > tools/shout
            chmod +x tools/shout
            echo "$PWD/tools" >> "$JOB_PATH"
          '';
        }
        {
          # env of a step: for this step only.
          name = "step-env";
          env.ONLY_HERE = "step value";
          bash = ''echo "ONLY_HERE=$ONLY_HERE"'';
        }
        {
          name = "use";
          bash = ''
            echo "GREETING=$GREETING"
            printf '%s\n' "$NOTES" | sed 's/^/NOTES: /'
            shout "$GREETING"   # found through JOB_PATH
            echo "ONLY_HERE=''${ONLY_HERE:-unset} LOST=''${LOST:-unset}"
            # Outputs of the job, for the jobs that need it.
            echo "VERSION=1.2.3" >> "$JOB_OUTPUT"
            {
              echo "CHANGELOG<<END"
              echo "- fixed a bug"
              echo "- added a feature"
              echo "END"
            } >> "$JOB_OUTPUT"
          '';
        }
      ];
    };

    release = {
      executor = local;
      needs = [ "build-info" ];
      steps = [
        {
          name = "read";
          bash = ''
            # Outputs of build-info: job and key upper-cased, - -> _.
            echo "version $NEEDS_BUILD_INFO_VERSION"
            printf '%s\n' "$NEEDS_BUILD_INFO_CHANGELOG" | sed 's/^/changelog: /'
            # JOB_ENV values stay in their job.
            echo "GREETING=''${GREETING:-unset}"
          '';
        }
      ];
    };
  };
}
