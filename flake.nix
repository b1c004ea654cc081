{
  description = "Declarative, hardened Hugging Face Text Generation Inference (TGI) on NixOS with podman";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";

  outputs =
    { self, nixpkgs }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      nixosModules = {
        default = self.nixosModules.huggingface-tgi;
        huggingface-tgi = ./modules/huggingface-tgi;
      };

      packages = forAllSystems (pkgs: {
        default = self.packages.${pkgs.stdenv.hostPlatform.system}.tgi-nix;
        tgi-nix = pkgs.callPackage ./pkgs/tgi-nix { };
        mock-tgi-image = pkgs.callPackage ./pkgs/mock-tgi-image { };
      });

      checks = forAllSystems (
        pkgs:
        let
          system = pkgs.stdenv.hostPlatform.system;
        in
        {
          # The CLI's test suite runs in its checkPhase.
          tgi-nix = self.packages.${system}.tgi-nix;
        }
        // import ./nixos-tests {
          inherit pkgs;
          module = self.nixosModules.default;
          mockImage = self.packages.${system}.mock-tgi-image;
          tgiNix = self.packages.${system}.tgi-nix;
        }
      );

      formatter = forAllSystems (pkgs: pkgs.nixfmt-rfc-style);

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = [
            pkgs.nix
            pkgs.nixfmt-rfc-style
            pkgs.systemd
            pkgs.qemu
            # The CLI's dependencies and its `dev` extra, as declared in python/pyproject.toml.
            (pkgs.python3.withPackages (
              ps:
              let
                deps = import ./pkgs/tgi-nix/python-deps.nix;
              in
              map (name: ps.${name}) (deps.dependencies ++ deps.dev)
            ))
          ];
        };
      });
    };
}
