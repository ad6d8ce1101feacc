# containers.nix: one workflow, three places: this machine, a docker
# container and a podman container, passing artifacts along.
#
#   nixflow run examples/containers.nix
#
# The container jobs name no image: nixflow assembles one from the Nix
# closure of their steps' deps (cached by the closure's hash), so the
# toolchain the workflow declares is exactly what the steps get. The
# workspace is mounted at /workspace; artifacts travel through it.
#
# With nixpkgs the toolbox is bash and coreutils. Without it (as on the
# project's test machines, which have no nixpkgs), a stand-in derivation
# copies Debian's static busybox and bash (apt-get install busybox-static
# bash-static) into its $out/bin.
{ nixflow, pkgs ? null, ... }:
let
  toolbox =
    if pkgs != null then
      pkgs.buildEnv { name = "toolbox"; paths = [ pkgs.bashInteractive pkgs.coreutils ]; }
    else
      builtins.derivation {
        name = "toolbox";
        system = builtins.currentSystem;
        builder = "/bin/sh";
        args = [
          "-c"
          ''
            /bin/mkdir -p $out/bin
            /bin/cp /bin/busybox $out/bin/busybox
            /bin/cp /bin/bash-static $out/bin/bash
            for a in $(/bin/busybox --list); do
              [ -e $out/bin/$a ] || /bin/ln -s busybox $out/bin/$a
            done
          ''
        ];
      };
  local = nixflow.executors.local { copyRepo = false; };
  docker = nixflow.executors.oci { runtime = "docker"; copyRepo = false; };
  podman = nixflow.executors.oci { runtime = "podman"; copyRepo = false; };
in
nixflow.mkWorkflow {
  name = "containers";
  jobs = {
    source = {
      executor = local;
      steps = [
        { name = "write"; bash = ''mkdir -p src; echo "hello from $(uname -n)" > src/message''; }
      ];
      outputs = { src = "src"; };
    };

    build = {
      executor = docker;
      needs = [ "source" ];
      inputs = [ "src" ];
      steps = [
        {
          name = "shout";
          deps = [ toolbox ];
          bash = ''
            mkdir -p out
            tr a-z A-Z < src/message > out/MESSAGE
            echo "in $PWD, from $(cat src/message)"
          '';
        }
      ];
      outputs = { shouted = "out"; };
    };

    package = {
      executor = podman;
      needs = [ "build" ];
      inputs = [ "shouted" ];
      steps = [
        {
          name = "tar";
          deps = [ toolbox ];
          bash = ''
            tar -cf message.tar out
            echo "packed $(tar -tf message.tar | wc -l) entries"
          '';
        }
      ];
      outputs = { tarball = "message.tar"; };
    };

    check = {
      executor = local;
      needs = [ "package" ];
      inputs = [ "tarball" ];
      steps = [
        { name = "unpack"; bash = ''tar -xOf message.tar out/MESSAGE''; }
      ];
    };
  };
}
