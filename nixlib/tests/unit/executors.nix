# Executors bare and called, chained calls, hand-written sets, and the
# conversions: null options dropped, identityFile paths not copied into
# the store, a machine derivation as its output path.
let
  inherit (import ../support { }) lib tool;
  inherit (lib) executors;
  json = e: lib.internal.executorJSON "test" e;
  staged = executors.oci { image = "a"; };
in
{
  localBare = json executors.local;
  localCalled = json (executors.local { copyRepo = false; name = "build-env"; });
  localEmptyCall = json (executors.local { });
  ociCalled = json (executors.oci { image = "node:20"; copyRepo = true; });
  ociChained = json (staged { runtime = "docker"; } { mode = "shared"; });
  # Calling adds options to a copy: the first value is unchanged.
  ociChainedOriginal = json staged;
  ociNullDropped = json (executors.oci { image = "x"; runtime = null; });
  sshNixCopy = map (v: (json (executors.ssh { host = "h"; nixCopy = v; })).nixCopy) [ true false "auto" "always" "never" ];
  sshIdentityPath = let id = (json (executors.ssh { host = "h"; identityFile = ./executors.nix; })).identityFile; in {
    notInStore = builtins.substring 0 (builtins.stringLength builtins.storeDir) id != builtins.storeDir;
    absolute = builtins.substring 0 1 id == "/";
    noContext = !(builtins.hasContext id);
  };
  ec2Machine = let e = json (executors.ec2 { region = "r"; machine = tool; instanceType = "t"; sshUser = "u"; }); in {
    machineIsOutPath = e.machine == tool.outPath;
    fields = builtins.attrNames e;
  };
  handWritten = json { type = "ssh"; host = "h"; port = 22; };
  # nixactions reads an executor's name; one the library gave is not JSON.
  names = {
    bare = executors.local.name;
    called = (executors.local { copyRepo = false; }).name;
    given = (executors.local { name = "mine"; }).name;
    renamed = (json ((executors.local { name = "first"; }) { name = "second"; })).name;
    defaultRenamed = (json (executors.local { name = "x"; })).name;
  };
  # mkExecutor: hooks called with shell references, or strings.
  custom = json (lib.mkExecutor {
    name = "k8s";
    copyRepo = false;
    workdir = "/workspace";
    setupWorkspace = { actionDerivations }: "ns up";
    setupJob = { jobName, actionDerivations }: "pod up ${jobName}";
    executeJob = { jobName, actionDerivations, env }: ''pod exec ${jobName} "$@"'';
    saveArtifact = { name, path, jobName }: "pod cp-out ${path} ${name}";
    restoreArtifact = { name, path, jobName }: "pod cp-in ${name} ${path}";
    cleanupJob = { jobName }: "pod down ${jobName}";
    cleanupWorkspace = "ns down";
  });
  # The value is a set with a __functor; the JSON never has it.
  bareHasFunctor = executors.local ? __functor;
  jsonHasFunctor = (json (executors.local { })) ? __functor;
}
