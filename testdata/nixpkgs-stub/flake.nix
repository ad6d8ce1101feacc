# A stand-in for nixpkgs, for evaluating nixflow's flake offline (there is
# no nixpkgs on the test machines): just the attributes the flake uses.
# Packages are derivations that cannot be built, except runCommand's,
# writeText's and writeShellScriptBin's; and buildGoModule's when a test
# put a nixflow binary next to this file (nixflow-bin): then the package is
# that binary, so that a flake's workflow can be built and run for real.
{
  outputs = { self }:
    let
      stub = system:
        let
          drv = name: builtins.derivation { inherit name system; builder = "/bin/sh"; args = [ "-c" "exit 1" ]; };
          pkg = name: drv name // { overrideAttrs = f: pkg name; };
          runCommand = name: env: script: builtins.derivation (env // {
            inherit name system;
            builder = "/bin/sh";
            args = [ "-c" script ];
            PATH = "/usr/bin:/bin";
          });
          goPackage = name:
            if builtins.pathExists ./nixflow-bin
            then runCommand name { bin = ./nixflow-bin; } "mkdir -p $out/bin && cp $bin $out/bin/nixflow && chmod 755 $out/bin/nixflow"
            else drv name;
          buildGoModule = args: goPackage "${args.pname}-${args.version}" // {
            inherit (args) vendorHash subPackages;
            overrideAttrs = f: buildGoModule (args // f args);
          };
        in {
          inherit buildGoModule runCommand;
          mkShell = args: drv "nix-shell" // { packages = args.packages; };
          writeShellScriptBin = name: text: runCommand name { inherit text; passAsFile = [ "text" ]; }
            "mkdir -p $out/bin && { echo '#!/bin/sh'; cat $textPath; } > $out/bin/${name} && chmod 755 $out/bin/${name}";
          writeText = name: text: runCommand name { inherit text; passAsFile = [ "text" ]; } "cp $textPath $out";
        } // builtins.listToAttrs (map (n: { name = n; value = pkg n; })
          [ "go" "gopls" "git" "jq" "shellcheck" "sops" "age" "gnumake" "hyperfine" "nixpkgs-fmt" "bash" "util-linux" ]);
    in {
      legacyPackages = builtins.listToAttrs (map (system: { name = system; value = stub system; })
        [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ]);
    };
}
