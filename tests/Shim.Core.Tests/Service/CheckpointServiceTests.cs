using Containerd.Events;
using Containerd.Task.V2;
using Google.Protobuf;
using Shim.Core.Errors;
using Shim.Core.Processes;
using Shim.Core.Service;
using Shim.Os;
using Shim.Protos;
using Shim.Os.Terminals;
using TaskStatus = Containerd.Types.Task.Status;

namespace Shim.Core.Tests.Service;

/// <summary>Checkpoint (state rules, runc flags, work dir, dump.log) and restore (Create without runc, Start = runc restore).</summary>
public sealed class CheckpointServiceTests : TaskServiceTestBase
{
    private CreateTaskRequest Create(string checkpoint = "") => new()
    {
        Id = "c1",
        Bundle = Bundle,
        Checkpoint = checkpoint,
        Options = TypeUrls.Pack(new Containerd.Runc.V1.Options { BinaryName = "/bin/true" }),
    };

    private static CheckpointTaskRequest Checkpoint(Containerd.Runc.V1.CheckpointOptions? options = null) => new()
    {
        Id = "c1",
        Path = "/img",
        Options = options is null ? null : TypeUrls.Pack(options),
    };

    private List<string> RuncArgs(string verb) => Runc.ArgsByVerb[verb].Skip(7).ToList();

    [Fact]
    public async Task Checkpoint_is_refused_before_start_and_after_exit()
    {
        await Service.CreateAsync(Create(), Ct);
        var created = await Assert.ThrowsAsync<ShimException>(() => Service.CheckpointAsync(Checkpoint(), Ct));
        Assert.Equal(ErrorKind.FailedPrecondition, created.Kind);
        await Service.StartAsync(new StartRequest { Id = "c1" }, Ct);
        await Service.KillAsync(new KillRequest { Id = "c1", Signal = 9 }, Ct);
        await Service.WaitAsync(new WaitRequest { Id = "c1" }, Ct).WaitAsync(TimeSpan.FromSeconds(10), Ct);
        var stopped = await Assert.ThrowsAsync<ShimException>(() => Service.CheckpointAsync(Checkpoint(), Ct));
        Assert.Equal(ErrorKind.FailedPrecondition, stopped.Kind);
        Assert.DoesNotContain("checkpoint", Runc.Calls);
    }

    [Fact]
    public async Task Checkpoint_of_a_running_container_leaves_it_running_and_removes_the_default_work_dir()
    {
        await Service.CreateAsync(Create(), Ct);
        await Service.StartAsync(new StartRequest { Id = "c1" }, Ct);

        await Service.CheckpointAsync(Checkpoint(), Ct);

        string work = Path.Combine(Bundle, "work", "criu-work");
        Assert.Equal(["checkpoint", "--image-path", "/img", "--work-path", work, "--leave-running", "c1"], RuncArgs("checkpoint"));
        Assert.False(Directory.Exists(work), "the default CRIU work dir is removed after the dump");
        Assert.Equal(TaskStatus.Running, (await Service.StateAsync(new StateRequest { Id = "c1" }, Ct)).Status);
        Assert.Empty(Events.Events.OfType<TaskExit>());
    }

    [Fact]
    public async Task Checkpoint_options_become_criu_flags_and_a_given_work_path_is_kept()
    {
        await Service.CreateAsync(Create(), Ct);
        await Service.StartAsync(new StartRequest { Id = "c1" }, Ct);
        await Service.PauseAsync(new PauseRequest { Id = "c1" }, Ct);
        string work = Path.Combine(Bundle, "mywork");

        await Service.CheckpointAsync(Checkpoint(new Containerd.Runc.V1.CheckpointOptions
        {
            OpenTcp = true, ExternalUnixSockets = true, Terminal = true, FileLocks = true, EmptyNamespaces = { "network", "ipc" }, WorkPath = work,
        }), Ct);

        Assert.Equal(
            ["checkpoint", "--image-path", "/img", "--work-path", work, "--tcp-established", "--ext-unix-sk", "--shell-job", "--file-locks",
             "--empty-ns", "network", "--empty-ns", "ipc", "--leave-running", "c1"],
            RuncArgs("checkpoint"));
        Assert.True(Directory.Exists(work));
        Assert.Equal(TaskStatus.Paused, (await Service.StateAsync(new StateRequest { Id = "c1" }, Ct)).Status);
    }

    [Fact]
    public async Task Checkpoint_with_exit_lets_the_container_stop_and_reports_its_exit()
    {
        await Service.CreateAsync(Create(), Ct);
        await Service.StartAsync(new StartRequest { Id = "c1" }, Ct);

        await Service.CheckpointAsync(Checkpoint(new Containerd.Runc.V1.CheckpointOptions { Exit = true }), Ct);

        Assert.DoesNotContain("--leave-running", RuncArgs("checkpoint"));
        var waited = await Service.WaitAsync(new WaitRequest { Id = "c1" }, Ct).WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.Equal(137u, waited.ExitStatus);
        Assert.Equal([typeof(TaskCreate), typeof(TaskStart), typeof(TaskExit)], Events.Events.Select(e => e.GetType()));
    }

    [Fact]
    public async Task A_failed_checkpoint_keeps_criu_dump_log_in_the_bundle_and_reports_runcs_message()
    {
        await Service.CreateAsync(Create(), Ct);
        await Service.StartAsync(new StartRequest { Id = "c1" }, Ct);
        Runc.FailVerbWith = "checkpoint:criu failed: type NOTIFY errno 0";

        var ex = await Assert.ThrowsAsync<ShimException>(() => Service.CheckpointAsync(Checkpoint(), Ct));

        Assert.Contains("criu failed: type NOTIFY errno 0", ex.Message, StringComparison.Ordinal);
        string dumpLog = Path.Combine(Bundle, "criu-dump.log");
        Assert.Contains(dumpLog, ex.Message, StringComparison.Ordinal);
        Assert.Contains("fake dump failure", await File.ReadAllTextAsync(dumpLog, Ct), StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(Bundle, "work", "criu-work")));
        Assert.Equal(TaskStatus.Running, (await Service.StateAsync(new StateRequest { Id = "c1" }, Ct)).Status);
    }

    [Fact]
    public async Task Legacy_checkpoint_options_are_mapped_with_their_own_field_numbers()
    {
        await Service.CreateAsync(Create(), Ct);
        await Service.StartAsync(new StartRequest { Id = "c1" }, Ct);
        string work = Path.Combine(Bundle, "legacy-work");
        var request = new CheckpointTaskRequest
        {
            Id = "c1",
            Path = "/img",
            Options = TypeUrls.Pack(new Containerd.Linux.Runc.CheckpointOptions { WorkPath = work, FileLocks = true }),
        };

        await Service.CheckpointAsync(request, Ct);

        Assert.Equal(["checkpoint", "--image-path", "/img", "--work-path", work, "--file-locks", "--leave-running", "c1"], RuncArgs("checkpoint"));
    }

    [Fact]
    public async Task Create_from_a_checkpoint_runs_no_runc_and_reports_created_with_pid_0()
    {
        var response = await Service.CreateAsync(Create(checkpoint: "/ckpt"), Ct);

        Assert.Equal(0u, response.Pid);
        Assert.Empty(Runc.Calls);
        var state = await Service.StateAsync(new StateRequest { Id = "c1" }, Ct);
        Assert.Equal((TaskStatus.Created, 0u), (state.Status, state.Pid));
        var created = Assert.IsType<TaskCreate>(Assert.Single(Events.Events));
        Assert.Equal(("/ckpt", 0u), (created.Checkpoint, created.Pid));
        var exec = await Assert.ThrowsAsync<ShimException>(() => Service.ExecAsync(new ExecProcessRequest
        {
            Id = "c1",
            ExecId = "e1",
            Spec = new Google.Protobuf.WellKnownTypes.Any { TypeUrl = TypeUrls.OciProcess, Value = ByteString.CopyFromUtf8("""{"args":["true"],"cwd":"/"}""") },
        }, Ct));
        Assert.Equal(ErrorKind.FailedPrecondition, exec.Kind);
    }

    [Fact]
    public async Task A_restore_with_crun_as_the_binary_gets_no_no_subreaper_flag()
    {
        // crun's restore refuses runc's --no-subreaper ("unrecognized option"); it asks the binary first
        Runc.VersionOutput = "crun version 1.21\ncommit: 10269840aa07fb7e6b7e1acff6198692d8ff5c88\nspec: 1.0.0\n";
        await Service.CreateAsync(Create(checkpoint: "/ckpt"), Ct);

        var started = await Service.StartAsync(new StartRequest { Id = "c1" }, Ct);

        Assert.Equal(
            ["restore", "--image-path", "/ckpt", "--work-path", Path.Combine(Bundle, "work"), "--detach", "--pid-file", Path.Combine(Bundle, "init.pid"), "--bundle", Bundle, "c1"],
            RuncArgs("restore"));
        Assert.Equal((uint)Runc.Pids["c1"], started.Pid);
        await Service.KillAsync(new KillRequest { Id = "c1", Signal = 9 }, Ct);
        await Service.WaitAsync(new WaitRequest { Id = "c1" }, Ct).WaitAsync(TimeSpan.FromSeconds(10), Ct);
    }

    [Fact]
    public async Task Start_after_a_checkpoint_create_restores_with_runc_and_tracks_the_restored_pid()
    {
        await Service.CreateAsync(Create(checkpoint: "/ckpt"), Ct);

        var started = await Service.StartAsync(new StartRequest { Id = "c1" }, Ct);

        Assert.Equal(
            ["restore", "--image-path", "/ckpt", "--work-path", Path.Combine(Bundle, "work"), "--detach", "--pid-file", Path.Combine(Bundle, "init.pid"), "--no-subreaper", "--bundle", Bundle, "c1"],
            RuncArgs("restore"));
        Assert.Equal((uint)Runc.Pids["c1"], started.Pid);
        var state = await Service.StateAsync(new StateRequest { Id = "c1" }, Ct);
        Assert.Equal((TaskStatus.Running, started.Pid), (state.Status, state.Pid));
        Assert.Equal(started.Pid, (await Service.ConnectAsync(new ConnectRequest { Id = "c1" }, Ct)).TaskPid);

        await Service.KillAsync(new KillRequest { Id = "c1", Signal = 9 }, Ct);
        var waited = await Service.WaitAsync(new WaitRequest { Id = "c1" }, Ct).WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.Equal(137u, waited.ExitStatus);
        var deleted = await Service.DeleteAsync(new DeleteRequest { Id = "c1" }, Ct);
        Assert.Equal((started.Pid, 137u), (deleted.Pid, deleted.ExitStatus));
        Assert.Equal([typeof(TaskCreate), typeof(TaskStart), typeof(TaskExit), typeof(TaskDelete)], Events.Events.Select(e => e.GetType()));
        Assert.Equal(started.Pid, Events.Events.OfType<TaskStart>().Single().Pid);
        Assert.Equal(started.Pid, Events.Events.OfType<TaskExit>().Single().Pid);
    }

    [Fact]
    public async Task A_restored_process_that_dies_while_restore_is_in_flight_gets_its_start_event_first()
    {
        Runc.ExitDuringStart = true;
        await Service.CreateAsync(Create(checkpoint: "/ckpt"), Ct);

        await Service.StartAsync(new StartRequest { Id = "c1" }, Ct);

        var waited = await Service.WaitAsync(new WaitRequest { Id = "c1" }, Ct).WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.Equal(137u, waited.ExitStatus);
        Assert.Equal([typeof(TaskCreate), typeof(TaskStart), typeof(TaskExit)], Events.Events.Select(e => e.GetType()));
    }

    [Fact]
    public async Task A_failed_restore_leaves_the_task_created_and_deletable()
    {
        await Service.CreateAsync(Create(checkpoint: "/ckpt"), Ct);
        Runc.FailVerbWith = "restore:criu failed: type RESTORE errno 0";

        var ex = await Assert.ThrowsAsync<Shim.Runc.RuncException>(() => Service.StartAsync(new StartRequest { Id = "c1" }, Ct));

        Assert.Contains("criu failed", ex.Message, StringComparison.Ordinal);
        var state = await Service.StateAsync(new StateRequest { Id = "c1" }, Ct);
        Assert.Equal((TaskStatus.Created, 0u), (state.Status, state.Pid));
        Runc.FailVerbWith = null;
        await Service.DeleteAsync(new DeleteRequest { Id = "c1" }, Ct);
        Assert.Equal(0, Service.ContainerCount);
        Assert.Equal([typeof(TaskCreate), typeof(TaskDelete)], Events.Events.Select(e => e.GetType()));
    }
}
