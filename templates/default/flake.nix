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
    in
    {
      # nix run .#ci runs the pipeline, with the nixpkgs pinned here.
      packages = forAll (system: {
        ci = import ./ci.nix {
          pkgs = nixpkgs.legacyPackages.${system};
          nixflow = nixflow.lib.${system};
        };
      });
    };
}
