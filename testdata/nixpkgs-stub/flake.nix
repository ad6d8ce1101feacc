# A stand-in for nixpkgs, for evaluating nixflow's flake offline (there is
# no nixpkgs on the test machines): just the attributes the flake uses.
# Packages are derivations that cannot be built, except runCommand's.
{
  outputs = { self }:
    let
      stub = system:
        let
          drv = name: builtins.derivation { inherit name system; builder = "/bin/sh"; args = [ "-c" "exit 1" ]; };
          pkg = name: drv name // { overrideAttrs = f: pkg name; };
          buildGoModule = args: drv "${args.pname}-${args.version}" // {
            inherit (args) vendorHash subPackages;
            overrideAttrs = f: buildGoModule (args // f args);
          };
        in {
          inherit buildGoModule;
          runCommand = name: env: script: builtins.derivation (env // {
            inherit name system;
            builder = "/bin/sh";
            args = [ "-c" script ];
            PATH = "/usr/bin:/bin";
          });
          mkShell = args: drv "nix-shell" // { packages = args.packages; };
          writeShellScriptBin = name: text: drv name;
          writeText = name: text: drv name;
        } // builtins.listToAttrs (map (n: { name = n; value = pkg n; })
          [ "go" "gopls" "git" "jq" "shellcheck" "sops" "age" "gnumake" "hyperfine" "nixpkgs-fmt" "bash" "util-linux" ]);
    in {
      legacyPackages = builtins.listToAttrs (map (system: { name = system; value = stub system; })
        [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ]);
    };
}
