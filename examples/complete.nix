# complete.nix: a whole pipeline, from lint to cleanup.
#
#   nixflow run examples/complete.nix                     # deploy is skipped
#   nixflow run --env DEPLOY=yes examples/complete.nix    # deploy runs
#   DEPLOY=yes nixflow run examples/complete.nix          # the same
#
#   lint-format ─┐                               ┌─> deploy ─> notify ─> cleanup
#                ├─> test matrix (3 jobs) ─> build         (always)    (always)
#   lint-docs  ──┘
#
# - the lint jobs run in parallel; the test matrix starts when both passed;
# - build makes a tarball and saves it as the artifact "bundle";
# - deploy runs only when DEPLOY is yes (a bash condition, checked before
#   the job starts); the workflow declares DEPLOY = "no", so DEPLOY=yes in
#   nixflow's environment or --env DEPLOY=yes overrides it;
# - notify and cleanup run whatever happened before them (always()).
{ nixflow, pkgs ? null, ... }:
let
  local = nixflow.executors.local { copyRepo = false; };

  tests = nixflow.mkMatrixJobs {
    name = "test";
    matrix = {
      suite = [ "unit" "integration" ];
      shell = [ "bash" "sh" ];
      exclude = [ { suite = "integration"; shell = "sh"; } ];
    };
    jobTemplate = { suite, shell }: {
      needs = [ "lint-format" "lint-docs" ];
      executor = local;
      steps = [
        {
          name = "run";
          bash = ''
            ${shell} -c 'echo "$0 suite passed under $1"' ${suite} ${shell}
          '';
        }
      ];
    };
  };
in
nixflow.mkWorkflow {
  name = "complete";
  env.DEPLOY = "no";
  # A failed step is retried once, quickly, anywhere in the pipeline.
  retry = { maxAttempts = 2; minTime = 0.1; };
  # No job may take more than two minutes.
  timeout = "2m";

  jobs = tests // {
    # These two read the repository: the default executor copies it.
    lint-format.steps = [
      {
        name = "nix";
        bash = ''
          if grep -nE ' +$' examples/*.nix; then
            echo "trailing whitespace above"
            exit 1
          fi
          echo "$(ls examples/*.nix | wc -l) nix files without trailing whitespace"
        '';
      }
    ];
    lint-docs.steps = [
      {
        name = "titles";
        bash = ''
          for f in docs/*.md; do head -n 1 "$f" | grep -q '^# '; done
          echo "$(ls docs/*.md | wc -l) docs have a title"
        '';
      }
    ];

    build = {
      executor = local;
      needs = builtins.attrNames tests;
      steps = [
        {
          name = "bundle";
          bash = ''
            mkdir -p bundle
            echo "version 1.0.0, built $(date -u +%Y-%m-%dT%H:%M:%SZ)" > bundle/BUILD-INFO
            printf '#!/bin/sh\necho "app is running"\n' > bundle/app
            chmod +x bundle/app
            tar -czf bundle.tar.gz bundle
            echo "bundle.tar.gz: $(tar -tzf bundle.tar.gz | wc -l) entries"
          '';
        }
      ];
      outputs.bundle = "bundle.tar.gz";
    };

    deploy = {
      executor = local;
      needs = [ "build" ];
      condition = ''[ "$DEPLOY" = yes ]'';
      inputs = [ "bundle" ];
      steps = [
        {
          name = "release";
          bash = ''
            mkdir -p target
            tar -xzf bundle.tar.gz -C target
            target/bundle/app
            echo "deployed $(cut -d, -f1 target/bundle/BUILD-INFO)"
            echo "URL=https://staging.example/$NIXFLOW_RUN_ID" >> "$JOB_OUTPUT"
          '';
        }
      ];
    };

    notify = {
      executor = local;
      needs = [ "deploy" ];
      condition = "always()";
      steps = [
        {
          name = "message";
          # A skipped deploy has no outputs.
          bash = ''
            if [ -n "''${NEEDS_DEPLOY_URL:-}" ]; then
              echo "deployed to $NEEDS_DEPLOY_URL"
            else
              echo "not deployed (DEPLOY=$DEPLOY)"
            fi
          '';
        }
      ];
    };

    cleanup = {
      executor = local;
      needs = [ "notify" ];
      condition = "always()";
      steps = [ { name = "tidy"; bash = "echo cleaned up"; } ];
    };
  };
}
