# Shared by the tests: the library, the stand-in derivation the brief
# describes (a "package" whose bin/ links a host tool, buildable offline in
# well under a second), and fake nixpkgs pieces for the pkgs code paths.
{ pkgs ? null, nixflow ? null }:
rec {
  lib = import ../.. { inherit pkgs nixflow; };

  system = builtins.currentSystem;

  # PATH is empty in a build: the stand-ins use the host's tools (the
  # sandbox is off on the test machines).
  hostPath = "/usr/bin:/bin";

  tool = builtins.derivation {
    name = "tool";
    inherit system;
    builder = "/bin/sh";
    PATH = hostPath;
    args = [ "-c" "mkdir -p $out/bin; ln -s /bin/echo $out/bin/tool-echo" ];
  };

  # A stand-in program: $out/bin/NAME prints OUTPUT, whatever its arguments.
  fakeProgram = name: output: builtins.derivation {
    inherit name system output;
    builder = "/bin/sh";
    PATH = hostPath;
    args = [ "-c" "mkdir -p $out/bin; printf '#!/bin/sh\\nprintf \"%%s\\\\n\" \"%s\"\\n' \"$output\" > $out/bin/${name}; chmod +x $out/bin/${name}" ];
  };

  fakePkgs = import ./fake-pkgs.nix { inherit system hostPath fakeProgram; };
}
