# Ready-made steps. Each action is a plain step attribute set ({ name;
# bash; deps ? ...; }), so it can be used as is or adjusted with `//`:
#
#   steps = [ actions.checkout (actions.setupNode { version = "20"; }) actions.npmTest ];
#   steps = [ (actions.npmTest // { name = "unit"; timeout = "10m"; }) ];
#
# Steps run as `bash --noprofile --norc -eo pipefail -c BASH`. Anything a
# step wants later steps of the job to see goes through the files nixflow
# provides: $JOB_PATH (one directory per line, put in front of PATH) and
# $JOB_ENV (KEY=VALUE lines).
#
# Toolchains: given `pkgs` (nixflow's nixlib { inherit pkgs; }), setupNode,
# setupPython, setupRust and sopsLoad take their tools from it as deps, so
# the run uses the pinned versions; without pkgs (or when no attribute of
# pkgs matches the version) they check the tool on the executor's PATH and
# fail with a clear message if it is missing or of the wrong version.
# Evaluation never fails for lack of pkgs.
{ util, pkgs }:
let
  inherit (builtins) concatStringsSep elemAt filter head isInt isList isString
    length map match split tryEval;
  inherit (util) fail escapeShellArg describe;

  # resolve returns pkgs.NAME, or null when there is no pkgs, no such
  # attribute, or the attribute throws (nixpkgs turns removed packages into
  # throwing aliases, e.g. an old nodejs_14).
  resolve = name:
    if pkgs == null || !(pkgs ? ${name}) then null
    else
      let r = tryEval pkgs.${name}; in
      if r.success then r.value else null;

  present = filter (d: d != null);

  # version accepts "20", "3.11" or 20.
  version = where: v:
    if isString v && match "[0-9A-Za-z.+_-]+" v != null then v
    else if isInt v then toString v
    else fail where "expected a version such as \"20\" or \"3.11\", got ${if isString v then util.quote v else describe v}";

  versionParts = v: filter isString (split "[.]" v);

  # onPath: bash that puts each toolchain's bin/ on PATH for the later
  # steps of the job (a dep's bin/ is only on PATH for its own step).
  onPath = drvs: concatStringsSep "" (map (d: "echo ${escapeShellArg "${d}/bin"} >> \"$JOB_PATH\"\n") drvs);

  # checkVersion: bash that fails unless TOOL --version starts with the
  # wanted version (after an optional prefix such as "v" or "Python ").
  checkVersion = { action, tool, flag ? "--version", prefix, want }: ''
    if ! command -v ${tool} >/dev/null 2>&1; then
      echo "${action}: ${tool} is not on PATH (version ${want} wanted): give nixflow's nixlib pkgs, or use an executor that has it" >&2
      exit 1
    fi
    have=$(${tool} ${flag} 2>&1)
    case "$have" in
      ${escapeShellArg "${prefix}${want}"} | ${escapeShellArg "${prefix}${want}"}.*) echo "${action}: $have" ;;
      *)
        echo "${action}: found $have, but version ${want} was asked for" >&2
        exit 1
        ;;
    esac
  '';

  # A step with deps only when there are some, to keep the JSON small.
  mkStep = { name, bash, deps ? [ ] }:
    { inherit name bash; } // (if deps == [ ] then { } else { inherit deps; });

  args = name: a:
    if builtins.isAttrs a && !(util.isDerivation a) then a
    else fail "actions.${name}" "expected an attribute set, got ${describe a}";

  # checkout: the workspace already holds the repository (executors copy the
  # working tree unless copyRepo = false), so this only reports which commit
  # and how many uncommitted changes the job works on. Kept for workflows
  # ported from the seed library, where it is the first step of many jobs.
  checkout = mkStep {
    name = "checkout";
    bash = ''
      echo "workspace: $PWD"
      if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        commit=$(git rev-parse HEAD 2>/dev/null) || commit="(no commit yet)"
        changes=$(git status --porcelain | wc -l)
        echo "commit: $commit"
        echo "uncommitted changes: ''${changes// /} file(s)"
      else
        echo "not a git work tree (copyRepo = false, or git is not installed)"
      fi
    '';
  };

  # nixShell [ "curl" "jq" ]: adds packages to PATH for the later steps of
  # the job.
  #
  # With pkgs (nixflow's nixlib { inherit pkgs; }), the names are attributes
  # of pkgs ("jq", "python3Packages.requests"), resolved at EVALUATION time:
  # pinned by the workflow's nixpkgs, offline, built before the job like any
  # step's deps. A name that pkgs lacks is an evaluation error naming it.
  #
  # Without pkgs, the packages are built at RUN time: the machine running the step needs
  # Nix with flakes and access to nixpkgs (a registry entry, a cache or the
  # network). Set NIXFLOW_NIXPKGS (e.g. to "github:NixOS/nixpkgs/<rev>") to
  # pin it; an element with a '#' is used as a complete installable
  # ("nixpkgs/nixos-24.05#jq"). For builds pinned at evaluation time, prefer
  # `deps = [ pkgs.jq ];` on the step that needs the tool.
  #
  # Since the porting docs promise names resolved from pkgs, bare names
  # resolved at run time are not silent: the step's script starts with a
  # comment naming them (util.nixShellRunTime), which mkWorkflow turns into a
  # warning (workflow.nix, nixShellWarnings) that plan and run print.
  #
  # `nix build --print-out-paths` would be shorter but Nix 2.8 lacks it, so
  # the step builds, then asks `nix path-info` for the paths.
  nixShell = packages: if pkgs != null then nixShellPinned packages else nixShellAtRunTime packages;

  nixShellPinned = packages:
    let
      where = "actions.nixShell";
      lookup = name:
        let
          parts = filter isString (split "[.]" name);
          walk = v: ps:
            if ps == [ ] then v
            else if builtins.isAttrs v && v ? ${head ps} then
              (let r = tryEval v.${head ps}; in if r.success then walk r.value (builtins.tail ps) else null)
            else null;
          found = walk pkgs parts;
        in
        if !(isString name) then fail where "expected a package name (a string), got ${describe name}"
        else if found == null || !(util.isDerivation found) then fail where "package ${util.quote name} is not in pkgs"
        else found;
      drvs =
        if !(isList packages) then fail where "expected a list of package names, got ${describe packages}"
        else if packages == [ ] then fail where "expected at least one package name"
        else map lookup packages;
    in
    mkStep {
      name = "nix-shell ${concatStringsSep " " packages}";
      deps = drvs;
      bash = onPath drvs + ''
        echo ${escapeShellArg "nix-shell: ${concatStringsSep " " packages} on PATH for the next steps"}
      '';
    };

  nixShellAtRunTime = packages:
    let
      where = "actions.nixShell";
      names =
        if !(isList packages) then fail where "expected a list of package names, got ${describe packages}"
        else if packages == [ ] then fail where "expected at least one package name"
        else
          map
            (p:
              if isString p && match "[A-Za-z0-9_+.#:/=?&-]+" p != null then p
              else fail where "invalid package name ${if isString p then util.quote p else describe p}")
            packages;
      bare = filter (n: match ".*#.*" n == null) names;
    in
    mkStep {
      name = "nix-shell ${concatStringsSep " " names}";
      bash = (if bare == [ ] then "" else "${util.nixShellRunTime}${concatStringsSep " " bare}\n") + ''
        nix_() { nix --extra-experimental-features 'nix-command flakes' "$@"; }
        for pkg in ${concatStringsSep " " (map escapeShellArg names)}; do
          case "$pkg" in
            *'#'*) ref=$pkg ;;
            *) ref="''${NIXFLOW_NIXPKGS:-nixpkgs}#$pkg" ;;
          esac
          echo "nix-shell: building $ref"
          nix_ build --no-link "$ref"
          paths=$(nix_ path-info "$ref")
          added=0
          for out in $paths; do
            if [ -d "$out/bin" ]; then
              echo "$out/bin" >> "$JOB_PATH"
              added=1
            fi
          done
          if [ "$added" = 0 ]; then
            echo "nix-shell: $ref has no bin directory" >&2
            exit 1
          fi
        done
      '';
    };

  # setupNode { version = "20"; }: node (and npm) of that major version.
  # With pkgs: pkgs.nodejs_<major>.
  setupNode = a:
    let
      # "20" is nixactions' default.
      v = version (util.at a "version" "actions.setupNode: version") ((args "setupNode" a).version or "20");
      node = resolve "nodejs_${head (versionParts v)}";
    in
    util.checkFieldsAt "actions.setupNode" [ "version" ] (args "setupNode" a) (mkStep {
      name = "setup-node ${v}";
      deps = present [ node ];
      bash = onPath (present [ node ])
        + checkVersion { action = "setup-node"; tool = "node"; prefix = "v"; want = v; };
    });

  # setupPython { version = "3.11"; }: python3 of that version. With pkgs:
  # pkgs.python<major><minor> (python311), or pkgs.python3 for "3".
  setupPython = a:
    let
      # "3.11" is nixactions' default.
      v = version (util.at a "version" "actions.setupPython: version") ((args "setupPython" a).version or "3.11");
      parts = versionParts v;
      attr = if length parts >= 2 then "python${elemAt parts 0}${elemAt parts 1}" else "python${v}";
      python = resolve attr;
    in
    util.checkFieldsAt "actions.setupPython" [ "version" ] (args "setupPython" a) (mkStep {
      name = "setup-python ${v}";
      deps = present [ python ];
      bash = onPath (present [ python ])
        + checkVersion { action = "setup-python"; tool = "python3"; prefix = "Python "; want = v; };
    });

  # setupRust: rustc and cargo. With pkgs: pkgs.rustc and pkgs.cargo. There
  # is no version to ask for (it is a plain step, as in the seed library);
  # pin the toolchain through pkgs.
  setupRust =
    let tools = present [ (resolve "rustc") (resolve "cargo") ]; in
    mkStep {
      name = "setup-rust";
      deps = tools;
      bash = onPath tools + ''
        for tool in rustc cargo; do
          if ! command -v "$tool" >/dev/null 2>&1; then
            echo "setup-rust: $tool is not on PATH: give nixflow's nixlib pkgs, or use an executor that has it" >&2
            exit 1
          fi
          echo "setup-rust: $("$tool" --version)"
        done
      '';
    };

  npmInstall = mkStep {
    name = "npm-install";
    # npm ci is reproducible but needs a lock file.
    bash = ''
      if [ -f package-lock.json ] || [ -f npm-shrinkwrap.json ]; then
        npm ci
      else
        npm install
      fi
    '';
  };
  npmTest = mkStep { name = "npm-test"; bash = "npm test"; };
  npmBuild = mkStep { name = "npm-build"; bash = "npm run build"; };
  npmLint = mkStep { name = "npm-lint"; bash = "npm run lint"; };

  # sopsLoad { file; format ? "yaml"; }: decrypts a sops file at run time and
  # appends its values to $JOB_ENV for the later steps of the job. Each
  # value is first announced with ::add-mask:: so that it is replaced by
  # *** in every log. The file must be flat (KEY: value), since it is
  # decrypted to dotenv; sops writes a newline inside a value as \n.
  # `file` as a string is relative to the job's workspace (works on every
  # executor with copyRepo); a Nix path becomes its absolute path on the
  # machine that evaluates (not copied into the store), so it only suits
  # the local executor. The envProviders.sops provider is the alternative
  # that decrypts before the job starts.
  sopsLoad = a:
    let
      where = "actions.sopsLoad";
      o = args "sopsLoad" a;
      file = util.pathString (util.at o "file" "${where}: file") (o.file or (fail (util.at o null where) "missing required field \"file\""));
      format = util.enum (util.at o "format" "${where}: format") [ "yaml" "json" "dotenv" "ini" ] (o.format or "yaml");
      sops = present [ (resolve "sops") ];
    in
    util.checkFieldsAt where [ "file" "format" ] o (mkStep {
      name = "sops-load ${baseNameOf file}";
      deps = sops;
      bash = ''
        file=${escapeShellArg file}
        if ! command -v sops >/dev/null 2>&1; then
          echo "sops-load: sops is not on PATH: give nixflow's nixlib pkgs, or use an executor that has it" >&2
          exit 1
        fi
        decrypted=$(sops --decrypt --input-type ${format} --output-type dotenv "$file")
        count=0
        while IFS= read -r line; do
          case "$line" in
            "" | "#"*) continue ;;
          esac
          key=''${line%%=*}
          value=''${line#*=}
          if [ -n "$value" ]; then
            echo "::add-mask::$value"
          fi
          printf '%s=%s\n' "$key" "$value" >> "$JOB_ENV"
          count=$((count + 1))
        done <<< "$decrypted"
        echo "sops-load: $count variable(s) from $file"
      '';
    });

  # requireEnv [ "A" "B" ]: fails, listing every variable that is not set
  # or is empty. (The envProviders.required provider checks before the job
  # starts; this step checks at its place in the job, e.g. after sopsLoad.)
  requireEnv = names:
    let
      where = "actions.requireEnv";
      checked =
        if !(isList names) then fail where "expected a list of variable names, got ${describe names}"
        else if names == [ ] then fail where "expected at least one variable name"
        else map (n: util.varName where n) names;
    in
    mkStep {
      name = "require-env ${concatStringsSep " " checked}";
      bash = ''
        missing=""
        for name in ${concatStringsSep " " checked}; do
          if [ -z "''${!name:-}" ]; then
            missing="$missing''${missing:+, }$name"
          fi
        done
        if [ -n "$missing" ]; then
          echo "required variables not set or empty: $missing" >&2
          exit 1
        fi
        echo "require-env: all set"
      '';
    };
in
{
  inherit checkout nixShell setupNode setupPython setupRust npmInstall npmTest
    npmBuild npmLint sopsLoad requireEnv;
}
