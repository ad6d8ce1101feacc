# The nixflow Nix library.
#
#   nixflow = import ./nixlib { };                     # builtins only: .plan and .json
#   nixflow = import ./nixlib { inherit pkgs; nixflow = <package>; };  # also runnable
#
#   nixflow.mkWorkflow { name = "ci"; jobs = { ... }; }
#     .plan   the JSON job graph (schema v1) as a Nix value
#     .json   the same as JSON text (builtins.toJSON .plan)
#     .script with pkgs and nixflow: the standalone bash script made by
#             `nixflow compile`, ONE executable file (`nix build` gives
#             `result` = the script: `ssh host < result`); the workflow
#             value itself is that derivation too (packages.ci)
#     .drv    with pkgs and nixflow: a script running `nixflow run` on it
#     .app    with pkgs and nixflow: a flake app for .drv (apps.ci, which
#             `nix run .#ci` looks up before packages.ci)
#     .jsonFile  with pkgs: the JSON as a file in the store
#
# The API keeps the shape of the seed library (nixactions), so a workflow
# written for it ports by changing the import: mkWorkflow, mkMatrixJobs,
# executors.*, envProviders.*, actions.*. README.md here has the details;
# docs/schema.md describes the JSON.
#
# Evaluating .plan or .json uses builtins alone: it works without nixpkgs,
# offline, on Nix 2.8 and on current Nix.
{ pkgs ? null, nixflow ? null }:
let
  util = import ./util.nix;
  executors = import ./executors.nix { inherit util; };
  providers = import ./providers.nix { inherit util; };
  workflow = import ./workflow.nix {
    inherit util pkgs nixflow;
    executorJSON = executors.toJSON;
    providerJSON = providers.toJSON;
  };
  matrix = import ./matrix.nix { inherit util; };
in
{
  inherit (workflow) mkWorkflow;
  inherit (matrix) mkMatrixJobs;
  executors = executors.executors;
  inherit (executors) mkExecutor;
  envProviders = providers.providers;
  actions = import ./actions.nix { inherit util pkgs; };

  # The version of the JSON job graph this library writes.
  schemaVersion = 1;

  # Helpers for tests and tools; not a stable API.
  internal = {
    inherit util;
    inherit (matrix) combinations;
    executorJSON = executors.toJSON;
    providerJSON = providers.toJSON;
  };
}
