# parallel.nix: a job graph (DAG). Jobs start as soon as the jobs they
# need have finished, not level by level.
#
#   nixflow run examples/parallel.nix
#   nixflow plan examples/parallel.nix      # the levels, without running
#   nixflow run --max-parallel 1 examples/parallel.nix   # one job at a time
#
#        lint-nix ──┐
#                   ├──> test ──> build
#   lint-headers ───┘
#
#            docs        (needs nothing: runs alongside all of the above)
#
# The two lint jobs and docs start together; test starts when both lints
# have succeeded, build when test has. Each job runs in its own copy of the
# working tree (the default executor), so the lint jobs can read examples/.
# The short sleeps stand for real work, so that the overlap shows in the
# output.
{ nixflow, pkgs ? null, ... }:
nixflow.mkWorkflow {
  name = "parallel";
  jobs = {
    # Every example starts with a comment.
    lint-headers.steps = [
      {
        name = "headers";
        bash = ''
          sleep 0.3
          for f in examples/*.nix; do
            head -n 1 "$f" | grep -q '^# ' || { echo "$f: no header comment"; exit 1; }
          done
          echo "$(ls examples/*.nix | wc -l) examples have a header"
        '';
      }
    ];

    # No tabs and no trailing whitespace in the examples.
    lint-nix.steps = [
      {
        name = "whitespace";
        bash = ''
          sleep 0.3
          if grep -nE "$(printf '\t')| +$" examples/*.nix; then
            echo "tabs or trailing whitespace above"
            exit 1
          fi
          echo "no tabs or trailing whitespace"
        '';
      }
    ];

    test = {
      needs = [ "lint-headers" "lint-nix" ];
      steps = [
        {
          name = "usage";
          bash = ''
            for f in examples/*.nix; do
              grep -q "nixflow run $f" "$f" || { echo "$f: does not say how to run it"; exit 1; }
            done
            echo "every example says how to run it"
          '';
        }
      ];
    };

    build = {
      needs = [ "test" ];
      steps = [
        {
          name = "tarball";
          bash = ''
            tar -czf examples.tar.gz examples
            echo "examples.tar.gz: $(tar -tzf examples.tar.gz | wc -l) entries"
          '';
        }
      ];
    };

    # Independent: it needs no job, so it does not wait for any.
    docs = {
      steps = [
        {
          name = "count";
          bash = ''
            sleep 0.3
            echo "$(ls docs/*.md | wc -l) pages in docs/"
          '';
        }
      ];
    };
  };
}
