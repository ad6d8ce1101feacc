# secrets.nix: environment providers and masking.
#
#   nixflow run examples/secrets.nix
#
# envFrom lists providers, on the workflow or on a job. They run when the
# run starts, never when the Nix file is evaluated, so no secret enters the
# Nix store:
#
#   static { K = "v"; }        fixed values, written here: NOT secret
#   file { path = ...; }       a dotenv file (examples/example.env)
#   command { command = ...; } the KEY=VALUE lines a command prints: the
#                              way to use vault, op, bw or any secret
#                              manager's CLI
#   required [ "A" "B" ]       gives nothing: checks that A and B are set
#                              before any job starts
#   sops { file = ...; }       a sops-encrypted file (yaml, json, dotenv,
#                              ini), decrypted with `sops --decrypt`; not
#                              used here because it needs a key
#
# Values from file, sops and command providers are secrets: they show as
# *** in the console, the job logs, --log-format json, --events and the
# summary. A step can mask a value of its own by printing
# ::add-mask::VALUE. Masking is a safety net for logs: a step can still
# write a secret into a file or send it elsewhere.
#
# Try: comment out the file provider; the run then stops before any job
# starts, with "required variables not set: DB_PASSWORD, DB_USER".
{ nixflow, pkgs ? null, ... }:
let
  local = nixflow.executors.local { copyRepo = false; };
in
nixflow.mkWorkflow {
  name = "secrets";
  envFrom = [
    (nixflow.envProviders.static { DEPLOY_ENV = "staging"; })
    # A Nix path becomes its absolute path (the file is NOT copied into the
    # store). In a flake, prefer a string relative to the repository:
    # path = "examples/example.env".
    (nixflow.envProviders.file { path = ./example.env; required = true; })
  ];
  jobs = {
    deploy = {
      executor = local;
      envFrom = [
        # A stand-in for `vault kv get ...` or `op read ...`: the value
        # is made when the run starts, it is not in this file.
        (nixflow.envProviders.command { command = "echo API_TOKEN=tok-$(printf nixflow | sha256sum | cut -c1-10)"; })
        (nixflow.envProviders.required [ "DB_USER" "DB_PASSWORD" "API_TOKEN" ])
      ];
      steps = [
        {
          name = "show";
          bash = ''
            echo "DEPLOY_ENV=$DEPLOY_ENV"     # static: shown as is
            echo "DB_USER=$DB_USER"           # shorter than 4 characters: not masked
            echo "DB_PASSWORD=$DB_PASSWORD"   # from the file provider: ***
            echo "API_TOKEN=$API_TOKEN"       # from the command provider: ***
            echo "connecting to postgres://$DB_USER:$DB_PASSWORD@db.example"
          '';
        }
        {
          name = "mask-own";
          bash = ''
            session="sess-$(printf '%s' "$API_TOKEN" | sha256sum | cut -c1-16)"
            echo "::add-mask::$session"
            echo "session=$session"
          '';
        }
      ];
    };
  };
}
