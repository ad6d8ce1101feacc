# artifacts.nix: passing files between jobs with outputs and inputs.
#
#   nixflow run examples/artifacts.nix
#   nixflow run --artifacts-dir /tmp/out examples/artifacts.nix   # keep them
#
# Each job has its own workspace. A job's `outputs` (artifact name -> path
# in its workspace, a file or a directory) are saved after its steps; a job
# that needs it lists them in `inputs`:
#
#   "app"                           restored at its original path (out/)
#   { name = "app"; path = "dist"; } restored under dist/: a directory's
#                                    contents land in dist/, a file lands
#                                    as dist/<file>
#
# Permission bits (the executable below), symbolic links and empty
# directories survive the trip. A job may read only artifacts of jobs it
# needs, directly or transitively.
{ nixflow, pkgs ? null, ... }:
let
  local = nixflow.executors.local { copyRepo = false; };
in
nixflow.mkWorkflow {
  name = "artifacts";
  jobs = {
    build = {
      executor = local;
      steps = [
        {
          name = "compile";
          bash = ''
            mkdir -p out/bin out/share/doc out/cache
            printf '#!/bin/sh\necho "hello from app 0.3.0"\n' > out/bin/app
            chmod 755 out/bin/app
            echo 0.3.0 > out/share/doc/VERSION
            ln -s bin/app out/run
            echo 0.3.0 > VERSION
            echo "built: $(find out | sort | paste -sd ' ' -)"
          '';
        }
      ];
      outputs = {
        app = "out"; # a directory tree
        version = "VERSION"; # a single file
      };
    };

    test = {
      executor = local;
      needs = [ "build" ];
      inputs = [ "app" ]; # back at out/
      steps = [
        {
          name = "run";
          bash = ''
            # Steps run with bash -e: a failed test fails the step.
            test -x out/bin/app
            echo "out/bin/app is executable"
            test -L out/run
            echo "out/run is a link to $(readlink out/run)"
            test -d out/cache
            echo "out/cache (empty) is there"
            out/run
          '';
        }
      ];
    };

    package = {
      executor = local;
      needs = [ "test" ]; # build is needed transitively: its artifacts are readable
      inputs = [
        { name = "app"; path = "dist"; } # out/* lands in dist/
        { name = "version"; path = "dist"; } # VERSION lands as dist/VERSION
      ];
      steps = [
        {
          name = "tar";
          bash = ''
            echo "dist: $(ls dist | paste -sd ' ' -)"
            dist/bin/app
            tar -czf "app-$(cat dist/VERSION).tar.gz" -C dist .
            echo "$(ls *.tar.gz): $(tar -tzf app-*.tar.gz | wc -l) entries"
          '';
        }
      ];
      outputs.tarball = "app-0.3.0.tar.gz";
    };
  };
}
