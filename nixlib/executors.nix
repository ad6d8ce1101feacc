# Executors: where a job's steps run.
#
# Each executor works bare (`executor = executors.local;`) and called with
# options (`executors.oci { image = "node:20"; }`). The value is an
# attribute set holding the JSON fields (at least `type`) plus a
# `__functor`, which is what makes an attribute set callable in Nix;
# calling it adds options and gives again a callable value, so
#
#   base = executors.oci { image = "localhost/ci:1"; };
#   shared = base { mode = "shared"; name = "builders"; };
#
# works too. `toJSON` drops the `__functor` and checks the fields against
# the same table as the Go decoder (compiler/executor_<type>.go), so
# a typo fails evaluation instead of producing a graph the CLI rejects.
#
# Options set to null are treated as not given.
{ util }:
let
  inherit (builtins) attrNames concatStringsSep elem elemAt filter genList isAttrs
    isBool isInt isString length mapAttrs removeAttrs;
  inherit (util) fail quote describe;

  # Field checks, by field name. Each takes (where, value) and returns the
  # JSON value or fails.
  checks = {
    name = util.nonEmpty;
    copyRepo = util.bool;
    # oci
    image = util.nonEmpty;
    runtime = where: util.enum where [ "auto" "docker" "podman" ];
    # oci and ec2
    mode = where: util.enum where [ "isolated" "shared" ];
    volumes = util.stringList;
    options = util.stringList;
    # ssh
    host = util.nonEmpty;
    user = util.nonEmpty;
    port = intBetween 1 65535;
    # A private key must never be copied into the world-readable Nix store:
    # a Nix path is turned into its absolute path as a string.
    identityFile = util.pathString;
    # oci: where the workspace is mounted; ssh: where workspaces are made.
    workdir = util.nonEmpty;
    nixCopy = where: v:
      if isBool v then v else util.enum where [ "auto" "always" "never" ] v;
    maxJobs = intBetween 1 1024;
    # A pool: host names, or { host; user; port; identityFile; maxJobs; }.
    hosts = where: v:
      let l = util.list where v; in
      if l == [ ] then fail where "must not be empty"
      else genList (i: poolHost "${where}[${toString i}]" (elemAt l i)) (length l);
    # ec2
    region = util.nonEmpty;
    ami = util.nonEmpty;
    # A machine may be given as a derivation (e.g. a NixOS image); the JSON
    # holds its output path.
    machine = where: v: if util.isDerivation v then "${v}" else util.nonEmpty where v;
    machineDrv = util.nonEmpty;
    instanceType = util.nonEmpty;
    subnetId = util.nonEmpty;
    securityGroupIds = util.stringList;
    keyName = util.nonEmpty;
    sshUser = util.nonEmpty;
    sshPort = intBetween 1 65535;
    address = where: util.enum where [ "auto" "public" "private" ];
    rootVolumeSize = intBetween 1 65536;
    spot = util.bool;
    tags = where: v: mapAttrs (k: util.str "${where}.${k}") (util.attrs where v);
    endpoint = util.nonEmpty;
    maxLifetime = util.duration "null keeps the default, 2h: an instance always has a shutdown timer";
    # custom (workdir above)
    hooks = customHooks;
  };

  # The hooks of a custom executor, bash scripts (see mkExecutor).
  hookNames = [ "setupWorkspace" "setupJob" "executeJob" "saveArtifact" "restoreArtifact" "cleanupJob" "cleanupWorkspace" ];
  customHooks = where: v:
    let h = util.attrs where v; in
    util.checkFields where hookNames h (
      let missing = filter (k: !(h ? ${k}) || h.${k} == null) [ "executeJob" "saveArtifact" "restoreArtifact" ]; in
      if missing != [ ] then fail where "missing required hook ${quote (builtins.head missing)}"
      else mapAttrs (k: util.str "${where}.${k}") (util.removeNulls h));

  intBetween = lo: hi: where: v:
    if isInt v && v >= lo && v <= hi then v
    else if isInt v then fail where "must be between ${toString lo} and ${toString hi}, got ${toString v}"
    else fail where "expected an integer, got ${describe v}";

  poolHostFields = [ "host" "user" "port" "identityFile" "maxJobs" ];
  poolHost = where: h:
    if isString h then checks.host where h
    else
      let a = util.attrs where h; in
      util.checkFields where poolHostFields a (
        if !(a ? host) then fail where "missing required field \"host\""
        else mapAttrs (k: v: checks.${k} "${where}.${k}" v) (util.removeNulls a));

  common = [ "name" "copyRepo" ];

  # The fields each type accepts, as in compiler/executor_*.go; required
  # ones first. ec2 also needs exactly one of ami and machine (checked below).
  types = {
    local = { required = [ ]; optional = common; };
    # Without an image, nixflow assembles one from the deps' closure.
    oci = { required = [ ]; optional = common ++ [ "image" "runtime" "mode" "user" "workdir" "volumes" "options" ]; };
    # ssh needs "host" or, for a pool, "hosts" instead (checked below).
    ssh = {
      required = [ "host" ];
      optional = common ++ [ "hosts" "user" "port" "identityFile" "workdir" "nixCopy" "options" "maxJobs" ];
    };
    custom = { required = [ "hooks" ]; optional = common ++ [ "workdir" ]; };
    ec2 = {
      required = [ "region" "instanceType" "sshUser" ];
      optional = common ++ [ "ami" "machine" "machineDrv" "subnetId" "securityGroupIds" "keyName" "sshPort"
        "address" "spot" "tags" "rootVolumeSize" "endpoint" "maxLifetime" "mode" ];
    };
  };

  typeNames = attrNames types;

  # toJSON checks an executor value (bare, called, or a hand-written
  # attribute set with a `type`) and returns its JSON object. where is the
  # job (`job "test"`), or "" when checking where the executor is called.
  toJSON = where: e:
    if !(isAttrs e) || util.isDerivation e then
      fail "${where}: executor" "expected an executor (executors.local, executors.oci { ... }, ...), got ${describe e}"
    else if !(e ? type) then
      fail "${where}: executor" "executor without a type (use executors.local, executors.oci, executors.ssh or executors.ec2)"
    else if !(elem e.type typeNames) then
      fail "${where}: executor.type" "unknown executor type ${quote e.type}${
        if e.type == "docker" || e.type == "podman"
        then " (containers are executors.oci { runtime = ${quote e.type}; ... })"
        else util.didYouMean e.type typeNames} (known: ${concatStringsSep ", " typeNames})"
    else
      let
        spec = types.${e.type};
        here = if where == "" then "executors.${e.type}" else "${where}: executors.${e.type}";
        # A name the library gave (executors.local.name) is not written.
        opts = util.removeNulls (userOptions e);
        required = if e.type == "ssh" && opts ? hosts then [ ] else spec.required;
        missing = filter (k: !(opts ? ${k})) required;
        known = spec.required ++ spec.optional;
      in
      util.checkFields here known opts (
        if missing != [ ] then
          fail here "missing required field ${quote (builtins.head missing)}${
            if e ? __functor && userOptions e == { }
            then " (call it with options: executors.${e.type} { ${builtins.head missing} = ...; })"
            else ""}"
        else if e.type == "ec2" && (opts ? ami) == (opts ? machine) then
          fail here "needs exactly one of \"ami\" and \"machine\""
        else if e.type == "ssh" && opts ? host && opts ? hosts then
          fail here "needs exactly one of \"host\" and \"hosts\""
        else
          { inherit (e) type; } // mapAttrs (k: v: checks.${k} "${here}.${k}" v) opts
          # A machine given as a derivation also gives the .drv that builds
          # it (without its context, as for deps: see workflow.nix), for
          # nixflow to realise the image when it is not built yet.
          // (if e.type == "ec2" && opts ? machine && util.isDerivation opts.machine && !(opts ? machineDrv)
              then { machineDrv = builtins.unsafeDiscardStringContext opts.machine.drvPath; } else { }));

  # make returns the executor of a type with the given options, callable
  # again to add options. Its options are checked where a job uses it
  # (toJSON), so that the error names the job, and the CLI puts it at the
  # job's executor field in the Nix file.
  make = type: opts:
    let
      value = { inherit type; } // opts
        // (if opts ? name && opts.name != null then { } else { name = type; __defaultName = true; });
    in
    value // {
      __functor = self: more: make type (userOptions self // options type more);
    };

  # userOptions: the options of an executor value as the user gave them.
  userOptions = e:
    removeAttrs e ([ "__functor" "type" "__defaultName" ] ++ (if e.__defaultName or false then [ "name" ] else [ ]));

  options = type: o:
    if !(isAttrs o) || util.isDerivation o then
      fail "executors.${type}" "expected an attribute set of options, got ${describe o}"
    else if o ? type then
      fail "executors.${type}" "\"type\" is not an option (use executors.${type} or another executor)"
    else o;

  # The bare executor: only its type, checked when the workflow is written
  # (a bare executors.ssh fails there with "missing required field"; a
  # bare executors.oci is a container of the steps' deps, with bash and
  # coreutils: see withImageDeps).
  # Its name is the type, as with nixactions (executors.local.name is
  # "local"), but not written into the JSON.
  bare = type: {
    inherit type;
    name = type;
    __defaultName = true;
    __functor = self: opts: make type (options type opts);
  };

  # mkExecutor: nixactions' way to define an executor, as a custom
  # executor. Each hook is a function (called with the arguments nixactions
  # passes, whose values are shell references resolved when the hook runs)
  # or a string, and returns bash. See docs/executors.md ("custom").
  mkExecutor = a:
    let
      where = "mkExecutor";
      args = util.attrs where a;
      job = "$NIXFLOW_JOB";
      hookArgs = {
        setupWorkspace = { actionDerivations = [ ]; };
        cleanupWorkspace = { actionDerivations = [ ]; };
        setupJob = { jobName = job; actionDerivations = [ ]; };
        executeJob = { jobName = job; actionDerivations = [ ]; env = { }; };
        cleanupJob = { jobName = job; };
        # saveArtifact copies $1 (where the steps run) to $2 (here);
        # restoreArtifact copies $1 (here) to $2 (where the steps run).
        saveArtifact = { name = "$2"; path = "$1"; jobName = job; };
        restoreArtifact = { name = "$1"; path = "$2"; jobName = job; };
      };
      hook = k:
        let v = args.${k}; in
        if builtins.isFunction v then util.str "${where}: ${k}" (v hookArgs.${k})
        else util.str "${where}: ${k}" v;
      given = k: args ? ${k} && args.${k} != null;
    in
    util.checkFields where ([ "name" "copyRepo" "workdir" ] ++ hookNames ++ [ "provision" "fetchArtifacts" "pushArtifacts" ]) args (
      make "custom" (
        { hooks = builtins.listToAttrs (map (k: { name = k; value = hook k; }) (filter given hookNames)); }
        // util.optionalAttrs (given "name") { name = args.name; }
        // util.optionalAttrs (given "copyRepo") { copyRepo = args.copyRepo; }
        // util.optionalAttrs (given "workdir") { workdir = args.workdir; }));
in
{
  executors = {
    local = bare "local";
    oci = bare "oci";
    ssh = bare "ssh";
    ec2 = bare "ec2";
    custom = bare "custom";
    # nixactions' Kubernetes executor has no nixflow backend: a custom
    # executor drives kubectl instead.
    k8s = fail "executors.k8s" "not available in nixflow: define a custom executor with mkExecutor { name; setupJob; executeJob; saveArtifact; restoreArtifact; ... } whose hooks call kubectl (docs/executors.md, \"custom\")";
  };

  inherit mkExecutor;

  # Used by workflow.nix; not part of the user-facing API.
  inherit toJSON;
}
