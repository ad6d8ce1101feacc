# remote.nix: jobs on SSH hosts, a pool of them, and artifacts between
# the hosts and this machine.
#
#   SSH_HOSTS="build1 build2" nixflow run examples/remote.nix
#
# SSH_HOSTS names two or more hosts as `ssh NAME` reaches them (aliases of
# ~/.ssh/config work, with their users, keys and ProxyJump); SSH_USER,
# SSH_PORT, SSH_KEY and SSH_OPTIONS (-o values, space separated) are
# optional. The hosts need sshd, bash, tar and setsid, and Nix for the
# `check` job, whose tool is copied there with nix-copy-closure.
#
# `build-a` and `build-b` run on the pool, one job per host at a time, so
# each runs on a host of its own; `check` runs on the last host with a
# tool from Nix; `report` runs here. Each job's artifact travels from the
# host it ran on, through this machine, to the jobs that need it. The
# summary's WHERE column says where each job ran.
{ nixflow, pkgs ? null, ... }:
let
  inherit (builtins) filter fromJSON getEnv isString length elemAt split;
  words = s: filter (w: isString w && w != "") (split "[[:space:]]+" s);
  hosts = let h = words (getEnv "SSH_HOSTS"); in if h == [ ] then [ "localhost" ] else h;
  given = name: value: if value == "" then { } else { ${name} = value; };
  reach = given "user" (getEnv "SSH_USER")
    // given "identityFile" (getEnv "SSH_KEY")
    // (if getEnv "SSH_PORT" == "" then { } else { port = fromJSON (getEnv "SSH_PORT"); })
    // (let o = words (getEnv "SSH_OPTIONS"); in if o == [ ] then { } else { options = o; });

  # Jobs spread over the hosts, at most one at a time on each (maxJobs).
  pool = nixflow.executors.ssh (reach // { inherit hosts; maxJobs = 1; copyRepo = false; });
  last = nixflow.executors.ssh (reach // { host = elemAt hosts (length hosts - 1); copyRepo = false; });

  # A tool from Nix: GNU hello from nixpkgs, or without nixpkgs a stand-in
  # built with /bin/sh alone.
  hello = if pkgs != null then pkgs.hello else builtins.derivation {
    name = "hello-standin";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" "/bin/mkdir -p $out/bin; printf '#!/bin/sh\\necho Hello, world!\\n' > $out/bin/hello; /bin/chmod +x $out/bin/hello" ];
  };

  build = part: {
    executor = pool;
    steps = [
      {
        name = "make";
        bash = ''
          host=''${SSH_CONNECTION#* * }
          echo "part ${part} built on ''${host% *}"
          mkdir -p out
          echo "part ${part} from ''${host% *}" > out/${part}.txt
        '';
      }
    ];
    outputs.${part} = "out/${part}.txt";
  };
in
nixflow.mkWorkflow {
  name = "remote";
  jobs = {
    build-a = build "a";
    build-b = build "b";
    check = {
      executor = last;
      needs = [ "build-a" "build-b" ];
      inputs = [ "a" "b" ];
      steps = [
        { name = "tool"; bash = "hello"; deps = [ hello ]; }
        {
          name = "combine";
          bash = ''
            cat out/a.txt out/b.txt
            cat out/a.txt out/b.txt > combined.txt
          '';
        }
      ];
      outputs.combined = "combined.txt";
    };
    report = {
      executor = nixflow.executors.local { copyRepo = false; };
      needs = [ "check" ];
      inputs = [ "combined" ];
      steps = [ { name = "show"; bash = ''echo "here: $(wc -l < combined.txt) parts"''; } ];
    };
  };
}
