# Expected evaluation failures: each case's `value` must fail to evaluate
# (nix-instantiate --eval --strict) with a message containing `expect`.
# run.sh evaluates every case on its own.
let
  support = import ./support { };
  inherit (support) lib tool;
  inherit (lib) mkWorkflow mkMatrixJobs executors envProviders actions;
  ok = [ { bash = "true"; } ];
  # wf: the JSON of a workflow whose job "test" is j.
  job = j: (mkWorkflow { name = "w"; jobs = { build.steps = ok; test = j; }; }).json;
  step = s: job { steps = [ s ]; };
  workflow = w: (mkWorkflow ({ name = "w"; jobs.build.steps = ok; } // w)).json;
  case = expect: value: { inherit expect value; };
in
{
  # Jobs
  artifactNotNeeded = case ''jobs.test.inputs[0]: artifact "dist" comes from job "build", which job "test" does not need (add it to needs)'' (mkWorkflow { name = "w"; jobs = { build = { steps = ok; outputs.dist = "dist"; }; test = { inputs = [ "dist" ]; steps = ok; }; }; }).json;
  artifactUnknown = case ''jobs.test.inputs[0]: unknown artifact "dsit" (did you mean "dist"?)'' (mkWorkflow { name = "w"; jobs = { build = { steps = ok; outputs.dist = "dist"; }; test = { needs = [ "build" ]; inputs = [ "dsit" ]; steps = ok; }; }; }).json;
  allAtOnce = case ''nixflow: 2 problems in the workflow:'' (job { neds = [ "build" ]; steps = [ { bash = "true"; timout = "1m"; } ]; });
  positioned = case ''errors.nix:'' (job { neds = [ "build" ]; steps = ok; });
  jobTypo = case ''jobs.test: unknown field "neds" (did you mean "needs"?)'' (job { neds = [ "build" ]; steps = ok; });
  jobNoSteps = case ''nixflow: job "test": missing required field "steps"'' (job { needs = [ "build" ]; });
  jobEmptySteps = case ''nixflow: job "test": steps: a job needs at least one step'' (job { steps = [ ]; });
  jobStepsAndActions = case ''nixflow: job "test": "steps" and "actions" are the same field; give one'' (job { steps = ok; actions = ok; });
  jobStepsNotList = case ''nixflow: job "test": steps: expected a list, got an attribute set'' (job { steps = { bash = "x"; }; });
  needsNotList = case ''nixflow: job "test": needs: expected a list of job names, got a string (write needs = [ "build" ];)'' (job { needs = "build"; steps = ok; });
  needsUnknown = case ''jobs.test.needs: unknown job "biuld" (did you mean "build"?)'' (job { needs = [ "biuld" ]; steps = ok; });
  needsSelf = case ''nixflow: job "test": needs[0]: job "test" needs itself'' (job { needs = [ "test" ]; steps = ok; });
  needsTwice = case ''nixflow: job "test": needs[1]: job "build" is needed twice'' (job { needs = [ "build" "build" ]; steps = ok; });
  jobNameInvalid = case ''nixflow: workflow: jobs: invalid job name "-bad"'' (mkWorkflow { name = "w"; jobs."-bad".steps = ok; }).json;
  jobNotAttrs = case ''nixflow: job "test": expected a job attribute set, got a list'' (job [ ]);
  continueOnErrorType = case ''jobs.test.continueOnError: expected true or false, got a string'' (job { continueOnError = "yes"; steps = ok; });
  conditionEmpty = case ''jobs.test.condition: empty condition (use "always()" to run unconditionally)'' (job { condition = " "; steps = ok; });
  outputsAbsolute = case ''nixflow: job "test": outputs.bin: path "/etc/passwd" must be relative to the workspace'' (job { outputs.bin = "/etc/passwd"; steps = ok; });
  outputsLeaves = case ''nixflow: job "test": outputs.bin: path "a/../../b" leaves the workspace'' (job { outputs.bin = "a/../../b"; steps = ok; });
  outputsNixPath = case ''nixflow: job "test": outputs.bin: expected a path relative to the workspace (a string), got a nix path'' (job { outputs.bin = ./errors.nix; steps = ok; });
  inputsNoName = case ''nixflow: job "test": inputs[0]: missing required field "name"'' (job { inputs = [ { path = "x"; } ]; steps = ok; });
  inputsTypo = case ''jobs.test.inputs[0]: unknown field "pth" (did you mean "path"?)'' (job { inputs = [ { name = "x"; pth = "y"; } ]; steps = ok; });

  # Steps
  stepNoBash = case ''jobs.test.steps[0]: missing required field "bash"'' (step { name = "x"; });
  stepEmptyBash = case ''nixflow: job "test": step 1 ("x"): bash: must not be empty'' (step { name = "x"; bash = ""; });
  stepTypo = case ''jobs.test.steps[0]: unknown field "nme" (did you mean "name"?)'' (step { nme = "x"; bash = "true"; });
  stepNotAttrs = case ''nixflow: job "test": step 1: expected a step attribute set ({ bash = "..."; }), got a string'' (step "make");
  stepDerivation = case ''nixflow: job "test": step 1: expected a step attribute set ({ bash = "..."; }), got a derivation'' (step tool);
  stepNameTwoLines = case ''nixflow: job "test": step 1 ("a\nb"): name: must be one line'' (step { name = "a\nb"; bash = "true"; });
  workdirAbsolute = case ''nixflow: job "test": step 1: workdir: path "/tmp" must be relative to the workspace'' (step { bash = "true"; workdir = "/tmp"; });
  depRelative = case ''nixflow: job "test": step 1: deps[0]: expected a derivation or an absolute store path, got "bin/tool"'' (step { bash = "true"; deps = [ "bin/tool" ]; });
  depNixPath = case ''nixflow: job "test": step 1: deps[0]: a nix path is not a dep'' (step { bash = "true"; deps = [ ./errors.nix ]; });
  depBadDrv = case ''nixflow: job "test": step 1: deps[0].drv: expected an absolute .drv path, got "x"'' (step { bash = "true"; deps = [ { path = "/nix/store/x"; drv = "x"; } ]; });

  # Env
  envName = case ''jobs.test.env: invalid variable name "1BAD" (letters, digits and _, not starting with a digit)'' (job { env."1BAD" = "x"; steps = ok; });
  envValue = case ''env.L: expected a string, got a list'' (workflow { env.L = [ "a" ]; });
  envNull = case ''env.N: expected a string, got null'' (workflow { env.N = null; });

  # Retry and timeout
  retryBothSpellings = case ''jobs.test.retry: "maxAttempts" and "max_attempts" are the same field; give one'' (job { retry = { maxAttempts = 2; max_attempts = 3; }; steps = ok; });
  retryTypo = case ''retry: unknown field "maxAttempt" (did you mean "maxAttempts"?)'' (workflow { retry.maxAttempt = 2; });
  retryZero = case ''jobs.test.steps[0].retry.maxAttempts: must be between 1 and 1000, got 0'' (step { bash = "true"; retry.maxAttempts = 0; });
  retryBackoff = case ''retry.backoff: unknown value "exponentail" (did you mean "exponential"?) (known: exponential, linear, constant)'' (workflow { retry.backoff = "exponentail"; });
  retryNegative = case ''retry.minTime: must be a non-negative number of seconds, got -1'' (workflow { retry.min_time = -1; });
  retryNotAttrs = case ''retry: expected an attribute set, got an integer'' (workflow { retry = 3; });
  timeoutString = case ''timeout: invalid duration "5 minutes" (examples: 90, "90s", "5m", "1h30m")'' (workflow { timeout = "5 minutes"; });
  timeoutZero = case ''jobs.test.timeout: must be greater than zero (use null for no timeout)'' (job { timeout = 0; steps = ok; });
  timeoutZeroString = case ''jobs.test.timeout: must be greater than zero (use null for no timeout)'' (job { timeout = "0s"; steps = ok; });
  timeoutBool = case ''jobs.test.steps[0].timeout: expected seconds or a duration string, got a bool'' (step { bash = "true"; timeout = true; });

  # Workflow
  workflowTypo = case ''workflow: unknown field "jbs" (did you mean "jobs"?)'' (mkWorkflow { name = "w"; jbs = { }; }).json;
  workflowNoName = case ''nixflow: workflow: missing required field "name"'' (mkWorkflow { jobs.a.steps = ok; }).json;
  workflowNoJobs = case ''nixflow: workflow: jobs: a workflow needs at least one job'' (mkWorkflow { name = "w"; jobs = { }; }).json;
  loggingFormat = case ''nixflow: workflow: logging.format: unknown value "jsn" (did you mean "json"?)'' (workflow { logging.format = "jsn"; });
  jsonFileWithoutPkgs = case ''nixflow: mkWorkflow: .jsonFile needs pkgs:'' (mkWorkflow { name = "w"; jobs.a.steps = ok; }).jsonFile;
  runnerWithoutPkgs = case ''nixflow: mkWorkflow: .drv needs pkgs and the nixflow package'' (mkWorkflow { name = "w"; jobs.a.steps = ok; }).drv;

  conditionGithubExpr = case ''a condition is a status function (success(), failure(), always(), cancelled()) or a bash command, e.g. [ "$BRANCH" = main ]'' (job { condition = "\${{ github.ref == 'main' }}"; steps = ok; });
  conditionGithubStatus = case ''write the condition itself ("always()")'' (job { condition = "\${{ always() }}"; steps = ok; });
  # Executors
  ociEmptyImage = case ''nixflow: job "test": executors.oci.image: must not be empty'' (job { executor = executors.oci { image = ""; }; steps = ok; });
  ociUserTypo = case ''nixflow: job "test": executors.oci: unknown field "usr" (did you mean "user"?)'' (job { executor = executors.oci { usr = "ci"; }; steps = ok; });
  sshNoHost = case ''nixflow: job "test": executors.ssh: missing required field "host"'' (job { executor = executors.ssh { user = "ci"; }; steps = ok; });
  sshBareInJob = case ''nixflow: job "test": executors.ssh: missing required field "host"'' (job { executor = executors.ssh; steps = ok; });
  ec2NoRegion = case ''nixflow: job "test": executors.ec2: missing required field "region"'' (job { executor = executors.ec2 { ami = "x"; instanceType = "t"; sshUser = "u"; }; steps = ok; });
  ec2AmiAndMachine = case ''nixflow: job "test": executors.ec2: needs exactly one of "ami" and "machine"'' (job { executor = executors.ec2 { region = "r"; ami = "a"; machine = "m"; instanceType = "t"; sshUser = "u"; }; steps = ok; });
  ec2Neither = case ''nixflow: job "test": executors.ec2: needs exactly one of "ami" and "machine"'' (job { executor = executors.ec2 { region = "r"; instanceType = "t"; sshUser = "u"; }; steps = ok; });
  executorTypo = case ''nixflow: job "test": executors.oci: unknown field "imag" (did you mean "image"?)'' (job { executor = executors.oci { imag = "x"; }; steps = ok; });
  executorTypoLater = case ''nixflow: job "test": executors.oci: unknown field "mod" (did you mean "mode"?)'' (job { executor = (executors.oci { image = "x"; }) { mod = "shared"; }; steps = ok; });
  executorRuntime = case ''nixflow: job "test": executors.oci.runtime: unknown value "lxc" (known: auto, docker, podman)'' (job { executor = executors.oci { image = "x"; runtime = "lxc"; }; steps = ok; });
  sshHostAndHosts = case ''nixflow: job "test": executors.ssh: needs exactly one of "host" and "hosts"'' (job { executor = executors.ssh { host = "a"; hosts = [ "b" ]; }; steps = ok; });
  sshHostsEmpty = case ''nixflow: job "test": executors.ssh.hosts: must not be empty'' (job { executor = executors.ssh { hosts = [ ]; }; steps = ok; });
  sshPoolHostNoHost = case ''nixflow: job "test": executors.ssh.hosts[1]: missing required field "host"'' (job { executor = executors.ssh { hosts = [ "a" { maxJobs = 2; } ]; }; steps = ok; });
  sshPoolHostTypo = case ''nixflow: job "test": executors.ssh.hosts[0]: unknown field "maxjobs" (did you mean "maxJobs"?)'' (job { executor = executors.ssh { hosts = [ { host = "a"; maxjobs = 2; } ]; }; steps = ok; });
  sshMaxJobs = case ''nixflow: job "test": executors.ssh.hosts[0].maxJobs: must be between 1 and 1024, got 0'' (job { executor = executors.ssh { hosts = [ { host = "a"; maxJobs = 0; } ]; }; steps = ok; });
  executorPort = case ''nixflow: job "test": executors.ssh.port: must be between 1 and 65535, got 70000'' (job { executor = executors.ssh { host = "h"; port = 70000; }; steps = ok; });
  executorCopyRepo = case ''nixflow: job "test": executors.local.copyRepo: expected true or false, got a string'' (job { executor = executors.local { copyRepo = "no"; }; steps = ok; });
  ec2MaxLifetimeZero = case ''nixflow: job "test": executors.ec2.maxLifetime: must be greater than zero (null keeps the default, 2h: an instance always has a shutdown timer)'' (job { executor = executors.ec2 { region = "r"; ami = "a"; instanceType = "t"; sshUser = "u"; maxLifetime = "0s"; }; steps = ok; });
  executorNotAttrs = case ''nixflow: executors.local: expected an attribute set of options, got a string'' (executors.local "x");
  executorTypeOption = case ''nixflow: executors.local: "type" is not an option'' (executors.local { type = "oci"; });
  executorDocker = case ''nixflow: job "test": executor.type: unknown executor type "docker" (containers are executors.oci { runtime = "docker"; ... }) (known: custom, ec2, local, oci, ssh)'' (job { executor = { type = "docker"; }; steps = ok; });
  executorString = case ''nixflow: job "test": executor: expected an executor (executors.local, executors.oci { ... }, ...), got a string'' (job { executor = "local"; steps = ok; });

  # Providers
  fileNoPath = case ''nixflow: envProviders.file: missing required field "path"'' (envProviders.file { required = true; });
  sopsFormat = case ''nixflow: envProviders.sops.format: unknown value "toml" (known: yaml, json, dotenv, ini)'' (envProviders.sops { file = "s"; format = "toml"; });
  providerTypo = case ''nixflow: envProviders.file: unknown field "requird" (did you mean "required"?)'' (envProviders.file { path = ".env"; requird = true; });
  requiredName = case ''nixflow: envProviders.required.names[1]: invalid variable name "NOT-OK"'' (envProviders.required [ "OK" "NOT-OK" ]);
  staticValue = case ''nixflow: envProviders.static.values.L: expected a string, got a list'' (envProviders.static { L = [ ]; });
  commandEmpty = case ''nixflow: envProviders.command.command: must not be empty'' (envProviders.command { command = ""; });
  providerUnknownType = case ''nixflow: workflow: envFrom[0].type: unknown provider type "sopps" (did you mean "sops"?)'' (workflow { envFrom = [ { type = "sopps"; file = "x"; } ]; });
  providerNotAttrs = case ''nixflow: job "test": envFrom[0]: expected a provider, a derivation or an absolute path to a program, got ".env"'' (job { envFrom = [ ".env" ]; steps = ok; });

  # Matrix
  matrixCollision = case ''nixflow: mkMatrixJobs "test": combinations {"os":"a b"} and {"os":"a-b"} both make the job name "test-os-a-b"'' (mkMatrixJobs { name = "test"; matrix.os = [ "a b" "a-b" ]; jobTemplate = c: { steps = ok; }; });
  matrixDuplicateInclude = case ''both make the job name "test-os-mac"'' (mkMatrixJobs { name = "test"; matrix = { os = [ "linux" ]; include = [ { os = "mac"; } { os = "mac"; } ]; }; jobTemplate = c: { steps = ok; }; });
  matrixExcludeKey = case ''nixflow: mkMatrixJobs "test": matrix.exclude[0]: key "nod" is not a matrix key (did you mean "node"?) (known: node, os)'' (mkMatrixJobs { name = "test"; matrix = { os = [ "l" ]; node = [ 1 ]; exclude = [ { nod = 1; } ]; }; jobTemplate = c: { steps = ok; }; });
  matrixTemplateArg = case ''nixflow: mkMatrixJobs "test": jobTemplate: takes "w", which the combination {"v":"x"} has no value for (the matrix gives "v"; give the argument a default, { w ? null, ... }, or add it to the matrix)'' (mkMatrixJobs { name = "test"; matrix.v = [ "x" ]; jobTemplate = { v, w }: { steps = ok; }; });
  matrixNotList = case ''nixflow: mkMatrixJobs "test": matrix.os: expected a list of values, got a string'' (mkMatrixJobs { name = "test"; matrix.os = "linux"; jobTemplate = c: { steps = ok; }; });
  matrixEmptyAxis = case ''nixflow: mkMatrixJobs "test": matrix.os: expected at least one value'' (mkMatrixJobs { name = "test"; matrix.os = [ ]; jobTemplate = c: { steps = ok; }; });
  matrixListValue = case ''nixflow: mkMatrixJobs "test": matrix.os: matrix values must be strings, integers or booleans (they make the job name), got a list'' (mkMatrixJobs { name = "test"; matrix.os = [ [ "a" ] ]; jobTemplate = c: { steps = ok; }; });
  providerStorePath = case ''is in the Nix store (a flake's copy of its source): give the path as a string relative to the repository instead'' (envProviders.file { path = /. + builtins.unsafeDiscardStringContext (builtins.path { path = ./errors.nix; name = "copied-source"; }); });
  matrixFloat = case ''nixflow: mkMatrixJobs "test": matrix.n: a float would be rounded in the job name (Nix writes 6 significant digits): write it as a string, e.g. "2.5"'' (mkMatrixJobs { name = "test"; matrix.n = [ 2.5 ]; jobTemplate = c: { steps = ok; }; });
  envFloat = case ''env.F: a float would be rounded (Nix writes 6 significant digits): write it as a string, e.g. "1.5"'' (mkWorkflow { name = "x"; env.F = 1.5; jobs.a.steps = ok; }).json;
  matrixTemplate = case ''nixflow: mkMatrixJobs "test": jobTemplate: expected a function of the combination, got an attribute set'' (mkMatrixJobs { name = "test"; matrix.os = [ "a" ]; jobTemplate = { steps = ok; }; });
  matrixTypo = case ''nixflow: mkMatrixJobs: unknown field "matirx" (did you mean "matrix"?)'' (mkMatrixJobs { name = "test"; matirx.os = [ "a" ]; jobTemplate = c: { }; });
  matrixBadName = case "nixflow: mkMatrixJobs \".x\": name: must start with a letter, a digit or '_'" (mkMatrixJobs { name = ".x"; matrix.os = [ "a" ]; jobTemplate = c: { steps = ok; }; });
  matrixJobChecked = case ''jobs.test-os-a: unknown field "stpes" (did you mean "steps"?)'' (mkWorkflow { name = "w"; jobs = mkMatrixJobs { name = "test"; matrix.os = [ "a" ]; jobTemplate = c: { stpes = ok; }; }; }).json;

  # Actions
  setupNodeTypo = case ''nixflow: actions.setupNode: unknown field "versoin" (did you mean "version"?)'' (actions.setupNode { versoin = "20"; });
  setupPythonBadVersion = case ''nixflow: actions.setupPython: version: expected a version such as "20" or "3.11", got "3 11"'' (actions.setupPython { version = "3 11"; });
  nixShellNotList = case ''nixflow: actions.nixShell: expected a list of package names, got a string'' (actions.nixShell "jq");
  nixShellNotInPkgs = case ''nixflow: actions.nixShell: package "jqq" is not in pkgs'' ((import ./support { pkgs = (import ./support { }).fakePkgs; }).lib.actions.nixShell [ "jq" "jqq" ]).bash;
  nixShellBadName = case ''nixflow: actions.nixShell: invalid package name "jq; rm -rf /"'' (actions.nixShell [ "jq; rm -rf /" ]);
  sopsLoadNoFile = case ''nixflow: actions.sopsLoad: missing required field "file"'' (actions.sopsLoad { });
  sopsLoadFormat = case ''nixflow: actions.sopsLoad: format: unknown value "toml"'' (actions.sopsLoad { file = "s"; format = "toml"; });
  requireEnvName = case ''nixflow: actions.requireEnv: invalid variable name "A-B"'' (actions.requireEnv [ "A-B" ]);
  requireEnvEmpty = case ''nixflow: actions.requireEnv: expected at least one variable name'' (actions.requireEnv [ ]);
}
