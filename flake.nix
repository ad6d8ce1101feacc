{
  description = "nixflow: write your CI pipeline in Nix, run exactly that pipeline anywhere";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      version = "0.1.0";
      systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
      # builtins only, so that outputs which do not need nixpkgs (lib,
      # templates) evaluate without fetching it.
      forAll = f: builtins.listToAttrs (map (system: { name = system; value = f system; }) systems);
      pkgsFor = system: nixpkgs.legacyPackages.${system};

      nixflowFor = system:
        let pkgs = pkgsFor system; in
        pkgs.buildGoModule {
          pname = "nixflow";
          inherit version;
          src = self;
          # The NAR hash of `go mod vendor` for go.sum; flake_test.go
          # (TestFlakeVendorHash) recomputes it and fails when go.mod moves.
          vendorHash = "sha256-AirNjsf7lVGBK3Kw1G/fOZ+LRbay5tnMFklXl8Qh+eE=";
          subPackages = [ "cmd/nixflow" ];
          ldflags = [ "-s" "-w" "-X main.version=${version}" ];
          # The tests run in checks.go-tests, with the tools they need.
          doCheck = false;
          meta = {
            description = "Local-first CI/CD for Nix users";
            mainProgram = "nixflow";
          };
        };
    in
    {
      packages = forAll (system: {
        default = nixflowFor system;
        nixflow = nixflowFor system;
      });

      # The Nix library, with pkgs and the nixflow package, so that a
      # workflow is buildable (nix build .#ci: the compiled script) and
      # runnable (its .app, for apps.ci: nix run .#ci).
      lib = forAll (system: import ./nixlib {
        pkgs = pkgsFor system;
        nixflow = self.packages.${system}.default;
      });

      apps = forAll (system: {
        default = {
          type = "app";
          program = "${self.packages.${system}.default}/bin/nixflow";
        };
      });

      checks = forAll (system:
        let pkgs = pkgsFor system; in {
          # The Go tests that need no network: tests of outside tools (nix,
          # docker, sshd, sops) skip themselves inside the build sandbox.
          go-tests = (nixflowFor system).overrideAttrs (old: {
            pname = "nixflow-go-tests";
            doCheck = true;
            subPackages = [ ];
            nativeCheckInputs = (old.nativeCheckInputs or [ ]) ++ [ pkgs.git pkgs.bash pkgs.util-linux ];
            preCheck = ''
              export HOME=$TMPDIR
              git config --global user.email ci@example.com
              git config --global user.name ci
            '';
          });
          # The Nix library's fixtures, evaluated and compared at evaluation
          # time (no Nix inside the build needed).
          nixlib = pkgs.runCommand "nixlib-fixtures" { } (
            let results = import ./nixlib/tests/support/pure.nix; in
            if results.failed == [ ] then "echo ${toString results.passed} fixtures ok > $out"
            else throw "nixlib fixtures differ: ${builtins.concatStringsSep ", " results.failed}"
          );
        });

      devShells = forAll (system:
        let pkgs = pkgsFor system; in {
          default = pkgs.mkShell {
            packages = [ pkgs.go pkgs.gopls pkgs.git pkgs.jq pkgs.shellcheck pkgs.sops pkgs.age pkgs.gnumake pkgs.hyperfine ];
          };
        });

      formatter = forAll (system: (pkgsFor system).nixpkgs-fmt);

      templates.default = {
        path = ./templates/default;
        description = "A ci.nix and a flake.nix whose CI runs with nixflow";
        welcomeText = "Run `nixflow run` (or `nix run .#ci`) to run the pipeline in ci.nix.";
      };
    };
}
