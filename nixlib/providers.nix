# Environment providers (`envFrom` of a workflow or a job).
#
# Providers run when the workflow RUNS, never when it is evaluated: the
# JSON only says where the values come from, so no secret value enters the
# Nix store. The one exception is `static`, whose values are written in the
# Nix file and so end up in the JSON and in the store: never put a secret in
# a static provider.
#
# Paths (`file` of `file` and `sops` providers):
#   - a string is passed through; a relative one is resolved at run time
#     from the repository directory, `~/` is the home directory. This is the
#     form to use in a flake, where a Nix path would point into the flake's
#     copy of the source in the store (which holds git-tracked files only).
#   - a Nix path (./secrets.env) is turned into its absolute path with
#     toString, which does NOT copy the file into the store. This matters
#     for `file`: a dotenv file may hold plaintext secrets and anything in
#     the store is world-readable. A sops file is encrypted, so copying it
#     would be harmless, but toString keeps both providers alike.
#
# Only the fields the user wrote are emitted: defaults (file: required =
# false; sops: format = "yaml", required = true) live in one place, the Go
# compiler, so the two sides cannot disagree.
{ util }:
let
  inherit (builtins) attrNames concatStringsSep elem elemAt genList isAttrs
    length mapAttrs;
  inherit (util) fail quote describe;

  # The fields of each type, as in compiler/decode.go (providerFields).
  types = {
    static = { required = [ "values" ]; optional = [ ]; };
    file = { required = [ "path" ]; optional = [ "required" "secrets" "drv" ]; };
    sops = { required = [ "file" ]; optional = [ "format" "required" "secrets" ]; };
    command = { required = [ "command" ]; optional = [ "secrets" ]; };
    required = { required = [ "names" ]; optional = [ "secrets" ]; };
  };

  typeNames = attrNames types;

  checks = {
    values = util.env;
    # A derivation (nixactions' `path = pkgs.writeText ...`) gives its
    # store path; toJSON adds its drv, so that the run builds it.
    path = where: v: if util.isDerivation v then "${v}" else util.pathString where v;
    file = util.pathString;
    required = util.bool;
    # file: whether the values are secret (masked); nixflow's default is
    # true, nixactions' false, so it is emitted only when written.
    secrets = util.bool;
    # file: the .drv building path (added for a derivation given as path).
    drv = util.nonEmpty;
    format = where: util.enum where [ "yaml" "json" "dotenv" "ini" ];
    command = util.nonEmpty;
    names = where: v:
      let l = util.list where v; in
      genList (i: util.varName "${where}[${toString i}]" (elemAt l i)) (length l);
  };

  # toJSON checks a provider (made by the functions below, or written by hand
  # as { type = "file"; path = ".env"; }) and returns its JSON object. where
  # is its place in a workflow (`job "test": envFrom[0]`), or "" when
  # checking where the provider function is called.
  toJSON = where: p:
    if !(isAttrs p) || util.isDerivation p then
      fail where "expected a provider (envProviders.file { ... }, ...), got ${describe p}"
    else if !(p ? type) then
      fail where "provider without a type (use envProviders.static, .file, .sops, .command or .required)"
    else if !(elem p.type typeNames) then
      fail "${where}.type" "unknown provider type ${quote p.type}${util.didYouMean p.type typeNames} (known: ${concatStringsSep ", " typeNames})"
    else
      let
        spec = types.${p.type};
        here = if where == "" then "envProviders.${p.type}" else where;
        # As everywhere in the library, an option set to null is not given.
        opts = util.removeNulls (removeAttrs p [ "type" ]);
        missing = builtins.filter (k: !(opts ? ${k})) spec.required;
        # Checked where the function is called (where == ""): the error
        # starts with the place of what is wrong. In a job's envFrom, it
        # names the job, and the CLI finds the place.
        place = if where == "" then util.at else _: _: w: w;
      in
      util.checkFieldsWith place here (spec.required ++ spec.optional) opts (
        if missing != [ ] then fail (place opts null here) "missing required field ${quote (builtins.head missing)}"
        else { inherit (p) type; } // mapAttrs (k: v: checks.${k} (place opts k "${here}.${k}") v) opts
          // (if p.type == "file" && util.isDerivation (opts.path or null)
             then { drv = builtins.unsafeDiscardStringContext opts.path.drvPath; } else { }));

  # args checks the attribute set given to a provider function.
  args = name: a:
    if !(isAttrs a) || util.isDerivation a then
      fail "envProviders.${name}" "expected an attribute set, got ${describe a}"
    else if a ? type then
      fail "envProviders.${name}" "\"type\" is not an option (the function sets it)"
    else a;

  # Each function checks its result at once, so mistakes point at the call.
  # They return the JSON object itself: a provider is plain data.
  checked = name: p:
    let j = toJSON "" p; in
    builtins.deepSeq j j;
in
{
  providers = {
    # file { path, required ? false, secrets ? true }: KEY=VALUE lines of a
    # dotenv file; secrets = false marks plain settings, not masked.
    file = a: checked "file" ({ type = "file"; } // args "file" a);

    # sops { file, format ? "yaml", required ? true }: a sops-encrypted file,
    # decrypted at run time with `sops --decrypt` (on PATH).
    sops = a: checked "sops" ({ type = "sops"; } // args "sops" a);

    # static { K = "v"; }: fixed values. They are NOT secret: they are part of
    # the Nix expression, the JSON and the store.
    static = values: checked "static" { type = "static"; inherit values; };

    # required [ "A" "B" ]: fails the job, naming every missing variable.
    # The final values of these names are secrets (masked): how CI passes
    # tokens. Write { type = "required"; names = [ ... ]; secrets = false; }
    # for plain settings.
    required = names: checked "required" { type = "required"; inherit names; };

    # command { command }: a command (vault, op, bw, ...) printing KEY=VALUE
    # lines on its standard output.
    command = a: checked "command" ({ type = "command"; } // args "command" a);
  };

  # Used by workflow.nix; not part of the user-facing API.
  inherit toJSON;
}
