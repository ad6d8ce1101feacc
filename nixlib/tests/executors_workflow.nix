# Every executor type, bare and called, with every field the compiler
# accepts.
let
  inherit (import ./support { }) lib tool;
  inherit (lib) executors;
  step = [ { bash = "true"; } ];
  builders = executors.oci { image = "localhost/ci:1"; };
in
(lib.mkWorkflow {
  name = "executors";
  jobs = {
    local-bare = { executor = executors.local; steps = step; };
    local-called = { executor = executors.local { copyRepo = false; name = "scratch"; }; steps = step; };
    oci-min = { executor = builders; steps = step; };
    oci-full = {
      executor = builders {
        runtime = "podman";
        mode = "shared";
        name = "builders";
        volumes = [ "/var/cache/ci:/cache" ];
        options = [ "--network=none" ];
        copyRepo = true;
      };
      steps = step;
    };
    ssh-min = { executor = executors.ssh { host = "deploy.example"; }; steps = step; };
    ssh-pool = {
      executor = executors.ssh {
        hosts = [ "build1" { host = "build2"; maxJobs = 4; user = "builder"; port = 2200; } ];
        maxJobs = 2;
        user = "ci";
      };
      steps = step;
    };
    ssh-full = {
      executor = executors.ssh {
        host = "deploy.example";
        user = "ci";
        port = 2222;
        identityFile = "~/.ssh/ci";
        workdir = "/srv/ci";
        nixCopy = false;
        options = [ "StrictHostKeyChecking=accept-new" "ConnectTimeout=10" ];
        name = "prod";
        copyRepo = false;
      };
      steps = step;
    };
    ec2-ami = {
      executor = executors.ec2 {
        region = "eu-west-1";
        ami = "ami-0123456789abcdef0";
        instanceType = "c7g.large";
        sshUser = "ec2-user";
        spot = true;
        subnetId = "subnet-0abc";
        securityGroupIds = [ "sg-0abc" ];
        tags = { team = "perf"; };
        maxLifetime = "2h";
        endpoint = "http://127.0.0.1:4566";
      };
      steps = step;
    };
    ec2-machine = {
      # A machine given as a derivation: the JSON holds its output path.
      executor = executors.ec2 { region = "eu-west-1"; machine = tool; instanceType = "t3.micro"; sshUser = "root"; };
      steps = step;
    };
    hand-written = { executor = { type = "oci"; image = "alpine"; runtime = "docker"; }; steps = step; };
    default = { steps = step; };
  };
}).plan
