# Just enough of nixpkgs for the library's pkgs code paths, built with
# builtins.derivation and /bin/sh (there is no nixpkgs on the test
# machines). The toolchains are stand-ins printing a version.
{ system, hostPath, fakeProgram }:
{
  writeText = name: text: builtins.derivation {
    inherit name system text;
    builder = "/bin/sh";
    PATH = hostPath;
    args = [ "-c" "printf '%s' \"$text\" > $out" ];
  };

  # As in nixpkgs, meta is an attribute of the result, not of the build.
  writeShellScriptBin = name: text: builtins.derivation {
    inherit name system text;
    builder = "/bin/sh";
    PATH = hostPath;
    args = [ "-c" "mkdir -p $out/bin; { echo '#!/bin/bash'; printf '%s' \"$text\"; } > $out/bin/${name}; chmod +x $out/bin/${name}" ];
  } // { meta = { description = "runner"; }; };

  runCommand = name: env: script: builtins.derivation ({
    inherit name system;
    builder = "/bin/bash";
    PATH = hostPath;
    args = [ "-c" script ];
  } // env);

  # What a container without an image gets (workflow.nix, imageDeps).
  bash = fakeProgram "bash" "GNU bash, version 5.2.26";
  coreutils = fakeProgram "ls" "ls (GNU coreutils) 9.4";
  nodejs_20 = fakeProgram "node" "v20.11.0";
  python311 = fakeProgram "python3" "Python 3.11.4";
  rustc = fakeProgram "rustc" "rustc 1.77.0";
  cargo = fakeProgram "cargo" "cargo 1.77.0";
  # nixpkgs turns removed packages into throwing aliases.
  nodejs_14 = throw "nodejs_14 has been removed";
  sops = fakeProgram "sops" "API_KEY=s3cret-value";
  jq = fakeProgram "jq" "jq-1.7.1";
  curl = fakeProgram "curl" "curl 8.5.0";
  python3Packages = { pytest = fakeProgram "pytest" "pytest 8.0.0"; };
}
