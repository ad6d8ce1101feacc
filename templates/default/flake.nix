{
  description = "A project whose CI runs with nixflow";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    nixflow.url = "github:nixflow/nixflow";
    nixflow.inputs.nixpkgs.follows = "nixpkgs";
  };

  outputs = { self, nixpkgs, nixflow }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
      forAll = f: builtins.listToAttrs (map (system: { name = system; value = f system; }) systems);
      ci = system: import ./ci.nix {
        pkgs = nixpkgs.legacyPackages.${system};
        nixflow = nixflow.lib.${system};
      };
    in
    {
      # nix build .#ci gives `result`, the pipeline as one bash script:
      # `ssh build-host < result` runs it there (see nixflow's docs/compile.md).
      packages = forAll (system: { ci = ci system; });
      # nix run .#ci runs the pipeline here with nixflow (nix run looks in
      # apps before packages).
      apps = forAll (system: { ci = (ci system).app; });
    };
}
