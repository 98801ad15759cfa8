using Containerd.Events;
using Containerd.Task.V2;
using Google.Protobuf;
using Shim.Core.Errors;
using Shim.Core.Processes;
using Shim.Core.Service;
using Shim.Os;
using Shim.Protos;
using TaskStatus = Containerd.Types.Task.Status;

namespace Shim.Core.Tests.Service;

public sealed class TaskServiceTests : TaskServiceTestBase
{
    private CreateTaskRequest Create(string id = "c1") => new()
    {
        Id = id,
        Bundle = Bundle,
        Options = TypeUrls.Pack(new Containerd.Runc.V1.Options { BinaryName = "/bin/true" }),
    };

    [Fact]
    public async Task A_killed_container_reports_137_and_events_come_in_lifecycle_order()
    {
        var created = await Service.CreateAsync(Create(), Ct);
        Assert.True(created.Pid > 0);
        Assert.Equal(TaskStatus.Created, (await Service.StateAsync(new StateRequest { Id = "c1" }, Ct)).Status);
        await Service.StartAsync(new StartRequest { Id = "c1" }, Ct);
        Assert.Equal(TaskStatus.Running, (await Service.StateAsync(new StateRequest { Id = "c1" }, Ct)).Status);
        var wait = Service.WaitAsync(new WaitRequest { Id = "c1" }, Ct);
        await Service.KillAsync(new KillRequest { Id = "c1", Signal = 9 }, Ct);
        Assert.Equal(137u, (await wait.WaitAsync(TimeSpan.FromSeconds(10), Ct)).ExitStatus);
        var deleted = await Service.DeleteAsync(new DeleteRequest { Id = "c1" }, Ct);
        Assert.Equal((created.Pid, 137u), (deleted.Pid, deleted.ExitStatus));
        Assert.Equal([typeof(TaskCreate), typeof(TaskStart), typeof(TaskExit), typeof(TaskDelete)], Events.Events.Select(e => e.GetType()));
        var exit = Events.Events.OfType<TaskExit>().Single();
        Assert.Equal(("c1", "c1", created.Pid), (exit.ContainerId, exit.Id, exit.Pid));
    }

    [Fact]
    public async Task A_process_that_dies_while_start_is_in_flight_still_gets_its_start_event_first()
    {
        Runc.ExitDuringStart = true;
        await Service.CreateAsync(Create(), Ct);
        await Service.StartAsync(new StartRequest { Id = "c1" }, Ct);
        var waited = await Service.WaitAsync(new WaitRequest { Id = "c1" }, Ct).WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.Equal(137u, waited.ExitStatus);
        Assert.Equal([typeof(TaskCreate), typeof(TaskStart), typeof(TaskExit)], Events.Events.Select(e => e.GetType()));
    }

    [Fact]
    public async Task Unknown_ids_are_not_found_and_duplicates_already_exist()
    {
        async Task<ErrorKind> KindOf(Func<Task> call) => (await Assert.ThrowsAsync<ShimException>(call)).Kind;
        Assert.Equal(ErrorKind.NotFound, await KindOf(() => Service.StateAsync(new StateRequest { Id = "nope" }, Ct)));
        Assert.Equal(ErrorKind.NotFound, await KindOf(() => Service.KillAsync(new KillRequest { Id = "nope", Signal = 9 }, Ct)));
        Assert.Equal(ErrorKind.InvalidArgument, await KindOf(() => Service.StartAsync(new StartRequest { Id = "" }, Ct)));
        await Service.CreateAsync(Create(), Ct);
        Assert.Equal(ErrorKind.AlreadyExists, await KindOf(() => Service.CreateAsync(Create(), Ct)));
        Assert.Equal(ErrorKind.NotFound, await KindOf(() => Service.StateAsync(new StateRequest { Id = "c1", ExecId = "e1" }, Ct)));
    }

    [Fact]
    public async Task Start_twice_is_a_failed_precondition_and_delete_of_a_running_process_is_refused()
    {
        await Service.CreateAsync(Create(), Ct);
        await Service.StartAsync(new StartRequest { Id = "c1" }, Ct);
        var again = await Assert.ThrowsAsync<ShimException>(() => Service.StartAsync(new StartRequest { Id = "c1" }, Ct));
        Assert.Equal(ErrorKind.FailedPrecondition, again.Kind);
        var delete = await Assert.ThrowsAsync<ShimException>(() => Service.DeleteAsync(new DeleteRequest { Id = "c1" }, Ct));
        Assert.Equal(ErrorKind.FailedPrecondition, delete.Kind);
    }

    [Fact]
    public async Task Kill_after_exit_is_not_found()
    {
        await Service.CreateAsync(Create(), Ct);
        await Service.StartAsync(new StartRequest { Id = "c1" }, Ct);
        await Service.KillAsync(new KillRequest { Id = "c1", Signal = 9 }, Ct);
        await Service.WaitAsync(new WaitRequest { Id = "c1" }, Ct).WaitAsync(TimeSpan.FromSeconds(10), Ct);
        var ex = await Assert.ThrowsAsync<ShimException>(() => Service.KillAsync(new KillRequest { Id = "c1", Signal = 9 }, Ct));
        Assert.Equal(ErrorKind.NotFound, ex.Kind);
    }

    [Fact]
    public async Task A_runc_create_failure_carries_runcs_message_and_frees_the_id()
    {
        Runc.FailVerbWith = "create:rootfs is not a directory";
        var ex = await Assert.ThrowsAsync<Shim.Runc.RuncException>(() => Service.CreateAsync(Create(), Ct));
        Assert.Contains("rootfs is not a directory", ex.Message, StringComparison.Ordinal);
        Assert.Equal(0, Service.ContainerCount);
    }

    [Fact]
    public async Task Shutdown_is_ignored_while_a_container_exists()
    {
        await Service.CreateAsync(Create(), Ct);
        await Service.ShutdownAsync(new ShutdownRequest(), Ct);
        Assert.False(Service.ShutdownRequested.IsCompleted);
    }

    [Fact]
    public async Task Pids_lists_the_container_processes_from_runc_ps()
    {
        var created = await Service.CreateAsync(Create(), Ct);
        var pids = await Service.PidsAsync(new PidsRequest { Id = "c1" }, Ct);
        Assert.Equal([created.Pid], pids.Processes.Select(p => p.Pid));
    }

    private static ExecProcessRequest Exec(string execId) => new()
    {
        Id = "c1",
        ExecId = execId,
        Spec = new Google.Protobuf.WellKnownTypes.Any
        {
            TypeUrl = TypeUrls.OciProcess,
            Value = ByteString.CopyFromUtf8("""{"args":["sleep","1000"],"cwd":"/","terminal":true}"""),
        },
    };

    // runc 1.1 lists kill --all's processes from the container's cgroup, which a rootless container may lack
    private const string NoCgroup = "lstat /sys/fs/cgroup/c1: no such file or directory";

    [Fact]
    public async Task Kill_all_with_SIGKILL_that_runc_cannot_list_kills_the_init_of_a_container_with_its_own_pid_namespace()
    {
        Runc.FailKillAllWith = NoCgroup;
        await Service.CreateAsync(Create(), Ct);
        await Service.StartAsync(new StartRequest { Id = "c1" }, Ct);

        await Service.KillAsync(new KillRequest { Id = "c1", Signal = 9, All = true }, Ct);

        Assert.Equal(137u, (await Service.WaitAsync(new WaitRequest { Id = "c1" }, Ct).WaitAsync(TimeSpan.FromSeconds(10), Ct)).ExitStatus);
        Assert.Equal(2, Runc.Calls.Count(c => c == "kill"));
        Assert.DoesNotContain("--all", Runc.ArgsByVerb["kill"]);   // the second: the init alone
    }

    [Theory]
    [InlineData("""{"linux":{"namespaces":[{"type":"pid"}]}}""", 15u)]          // another signal: runc's --all is not the init's alone
    [InlineData("""{"linux":{"namespaces":[{"type":"mount"}]}}""", 9u)]        // no pid namespace of its own: killing init leaves the rest
    public async Task Kill_all_that_runc_cannot_list_fails_with_runc_s_reason_and_the_container_runs_on(string config, uint signal)
    {
        Runc.FailKillAllWith = NoCgroup;
        await File.WriteAllTextAsync(Path.Combine(Bundle, "config.json"), config, Ct);
        await Service.CreateAsync(Create(), Ct);
        await Service.StartAsync(new StartRequest { Id = "c1" }, Ct);

        var failed = await Assert.ThrowsAsync<Shim.Runc.RuncException>(() => Service.KillAsync(new KillRequest { Id = "c1", Signal = signal, All = true }, Ct));

        Assert.Contains(NoCgroup, failed.Message, StringComparison.Ordinal);
        Assert.Equal(1, Runc.Calls.Count(c => c == "kill"));
        Assert.Equal(TaskStatus.Running, (await Service.StateAsync(new StateRequest { Id = "c1" }, Ct)).Status);
    }

    [Fact]
    public async Task A_signal_number_Linux_does_not_have_is_refused_as_invalid_and_the_processes_keep_running()
    {
        await Service.CreateAsync(Create(), Ct);
        await Service.StartAsync(new StartRequest { Id = "c1" }, Ct);
        await Service.ExecAsync(Exec("e1"), Ct);
        await Service.StartAsync(new StartRequest { Id = "c1", ExecId = "e1" }, Ct);

        var init = await Assert.ThrowsAsync<ShimException>(() => Service.KillAsync(new KillRequest { Id = "c1", Signal = 65, All = true }, Ct));
        var exec = await Assert.ThrowsAsync<ShimException>(() => Service.KillAsync(new KillRequest { Id = "c1", ExecId = "e1", Signal = 67 }, Ct));

        Assert.Equal((ErrorKind.InvalidArgument, "kill c1: signal 65 is not a Linux signal (1 to 64)"), (init.Kind, init.Message));
        Assert.Equal((ErrorKind.InvalidArgument, "kill exec e1 of c1: signal 67 is not a Linux signal (1 to 64)"), (exec.Kind, exec.Message));
        Assert.Equal(TaskStatus.Running, (await Service.StateAsync(new StateRequest { Id = "c1" }, Ct)).Status);
        Assert.Equal(TaskStatus.Running, (await Service.StateAsync(new StateRequest { Id = "c1", ExecId = "e1" }, Ct)).Status);
        await Service.KillAsync(new KillRequest { Id = "c1", ExecId = "e1", Signal = 64 }, Ct);   // SIGRTMAX itself is a signal
        Assert.Equal(128u + 64, (await Service.WaitAsync(new WaitRequest { Id = "c1", ExecId = "e1" }, Ct).WaitAsync(TimeSpan.FromSeconds(10), Ct)).ExitStatus);
    }

    [Fact]
    public async Task An_exec_runs_reports_its_exit_and_is_listed_with_its_exec_id()
    {
        await Service.CreateAsync(Create(), Ct);
        await Service.StartAsync(new StartRequest { Id = "c1" }, Ct);
        await Service.ExecAsync(Exec("e1"), Ct);
        Assert.Equal(TaskStatus.Created, (await Service.StateAsync(new StateRequest { Id = "c1", ExecId = "e1" }, Ct)).Status);
        var started = await Service.StartAsync(new StartRequest { Id = "c1", ExecId = "e1" }, Ct);
        var state = await Service.StateAsync(new StateRequest { Id = "c1", ExecId = "e1" }, Ct);
        Assert.Equal((TaskStatus.Running, started.Pid, "e1"), (state.Status, state.Pid, state.Id));
        await Service.KillAsync(new KillRequest { Id = "c1", ExecId = "e1", Signal = 15 }, Ct);
        var waited = await Service.WaitAsync(new WaitRequest { Id = "c1", ExecId = "e1" }, Ct).WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.Equal(143u, waited.ExitStatus);
        var deleted = await Service.DeleteAsync(new DeleteRequest { Id = "c1", ExecId = "e1" }, Ct);
        Assert.Equal(143u, deleted.ExitStatus);
        await Assert.ThrowsAsync<ShimException>(() => Service.StateAsync(new StateRequest { Id = "c1", ExecId = "e1" }, Ct));
        Assert.Equal(
            [typeof(TaskCreate), typeof(TaskStart), typeof(TaskExecAdded), typeof(TaskExecStarted), typeof(TaskExit)],
            Events.Events.Select(e => e.GetType()));
        Assert.Equal("e1", Events.Events.OfType<TaskExit>().Single().Id);
    }

    [Fact]
    public async Task Deleted_execs_leave_nothing_behind_in_the_container_or_the_exit_router()
    {
        // issue #7: a shim serving thousands of execs must hold no record of the deleted ones
        await Service.CreateAsync(Create(), Ct);
        await Service.StartAsync(new StartRequest { Id = "c1" }, Ct);
        var baseline = Router.Counts;
        for (int i = 0; i < 20; i++)
        {
            string id = $"e{i}";
            await Service.ExecAsync(Exec(id), Ct);
            await Service.StartAsync(new StartRequest { Id = "c1", ExecId = id }, Ct);
            await Service.KillAsync(new KillRequest { Id = "c1", ExecId = id, Signal = 9 }, Ct);
            await Service.WaitAsync(new WaitRequest { Id = "c1", ExecId = id }, Ct).WaitAsync(TimeSpan.FromSeconds(10), Ct);
            await Service.DeleteAsync(new DeleteRequest { Id = "c1", ExecId = id }, Ct);
        }
        Assert.Empty(Service.ContainerFor("c1").Execs);
        Assert.Equal(baseline, Router.Counts);
        Assert.Equal((1, 0), Router.Counts); // init only
        var gone = await Assert.ThrowsAsync<ShimException>(() => Service.StateAsync(new StateRequest { Id = "c1", ExecId = "e0" }, Ct));
        Assert.Equal(ErrorKind.NotFound, gone.Kind);
    }

    [Fact]
    public async Task Duplicate_exec_ids_already_exist_and_bad_specs_are_invalid_and_free_their_id()
    {
        await Service.CreateAsync(Create(), Ct);
        await Service.ExecAsync(Exec("e1"), Ct);
        Assert.Equal(ErrorKind.AlreadyExists, (await Assert.ThrowsAsync<ShimException>(() => Service.ExecAsync(Exec("e1"), Ct))).Kind);
        var bad = Exec("e2");
        bad.Spec.Value = ByteString.CopyFromUtf8("{not json");
        Assert.Equal(ErrorKind.InvalidArgument, (await Assert.ThrowsAsync<ShimException>(() => Service.ExecAsync(bad, Ct))).Kind);
        await Service.ExecAsync(Exec("e2"), Ct); // the refused spec did not keep the id
        var unstarted = await Assert.ThrowsAsync<ShimException>(() => Service.KillAsync(new KillRequest { Id = "c1", ExecId = "e1", Signal = 9 }, Ct));
        Assert.Equal(ErrorKind.FailedPrecondition, unstarted.Kind);
    }

    /// <summary>c1 runs with exec e1; c1's init is SIGKILLed and its exit reaped and routed, while e1 runs on.</summary>
    private async Task<StartResponse> InitKilledBesideARunningExecAsync()
    {
        await Service.CreateAsync(Create(), Ct);
        await Service.StartAsync(new StartRequest { Id = "c1" }, Ct);
        await Service.ExecAsync(Exec("e1"), Ct);
        var exec = await Service.StartAsync(new StartRequest { Id = "c1", ExecId = "e1" }, Ct);
        await Service.KillAsync(new KillRequest { Id = "c1", Signal = 9 }, Ct);
        await Routed(Runc.Pids["c1"]);
        return exec;
    }

    [Fact]
    public async Task The_init_exit_is_published_after_the_exits_of_running_execs()
    {
        var exec = await InitKilledBesideARunningExecAsync();
        Assert.Empty(Events.Events.OfType<TaskExit>()); // init is dead but its exec still runs
        var refused = await Assert.ThrowsAsync<ShimException>(async () =>
        {
            await Service.ExecAsync(Exec("e2"), Ct);
            await Service.StartAsync(new StartRequest { Id = "c1", ExecId = "e2" }, Ct);
        });
        Assert.Equal(ErrorKind.FailedPrecondition, refused.Kind);
        Signals.Kill((int)exec.Pid, Signals.SIGKILL);
        await Service.WaitAsync(new WaitRequest { Id = "c1" }, Ct).WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.Equal(["e1", "c1"], Events.Events.OfType<TaskExit>().Select(e => e.Id));
    }

    /// <summary>
    /// containerd 1.7 and 2.x, loading after a restart, delete the task of a shim that lists no pids;
    /// an init that exited meanwhile may still have its report held (here behind an exec; output left
    /// unread holds it too). The Delete waits for the report instead of refusing a process that is gone.
    /// </summary>
    [Fact]
    public async Task Delete_of_an_init_whose_exit_is_reaped_but_held_waits_for_the_report_and_deletes()
    {
        var exec = await InitKilledBesideARunningExecAsync();
        Assert.Empty(Events.Events.OfType<TaskExit>()); // reaped, report held behind e1

        var delete = Service.DeleteAsync(new DeleteRequest { Id = "c1" }, Ct);
        Signals.Kill((int)exec.Pid, Signals.SIGKILL);
        var deleted = await delete.WaitAsync(TimeSpan.FromSeconds(10), Ct);

        Assert.Equal(137u, deleted.ExitStatus);
        Assert.Equal(["e1", "c1"], Events.Events.OfType<TaskExit>().Select(e => e.Id));
        Assert.Single(Events.Events.OfType<TaskDelete>());
        var gone = await Assert.ThrowsAsync<ShimException>(() => Service.StateAsync(new StateRequest { Id = "c1" }, Ct));
        Assert.Equal(ErrorKind.NotFound, gone.Kind);
    }

    [Fact]
    public void Exec_specs_get_the_requested_terminal_flag()
    {
        var json = TaskService.WithTerminal("""{"args":["sh"],"terminal":true,"cwd":"/"}"""u8, terminal: false, "e1");
        Assert.Equal("""{"args":["sh"],"cwd":"/","terminal":false}""", System.Text.Encoding.UTF8.GetString(json));
    }

    [Fact]
    public async Task Wait_on_an_exec_whose_start_failed_answers_at_once()
    {
        await Service.CreateAsync(Create(), Ct);
        await Service.StartAsync(new StartRequest { Id = "c1" }, Ct);
        await Service.ExecAsync(Exec("e1"), Ct);
        Runc.FailExec = true;
        await Assert.ThrowsAsync<Shim.Runc.RuncException>(() => Service.StartAsync(new StartRequest { Id = "c1", ExecId = "e1" }, Ct));
        var waited = await Service.WaitAsync(new WaitRequest { Id = "c1", ExecId = "e1" }, Ct).WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.Equal(255u, waited.ExitStatus);
        // as containerd's shim: an exec that never ran stays CREATED (containerd's TestIssue10589)
        Assert.Equal(TaskStatus.Created, (await Service.StateAsync(new StateRequest { Id = "c1", ExecId = "e1" }, Ct)).Status);
        var again = await Assert.ThrowsAsync<ShimException>(() => Service.StartAsync(new StartRequest { Id = "c1", ExecId = "e1" }, Ct));
        Assert.Equal(ErrorKind.FailedPrecondition, again.Kind);
        await Service.DeleteAsync(new DeleteRequest { Id = "c1", ExecId = "e1" }, Ct);
        Assert.Empty(Events.Events.OfType<TaskExit>());
        // the failed exec no longer counts: init's exit is not held for it
        await Service.KillAsync(new KillRequest { Id = "c1", Signal = 9 }, Ct);
        Assert.Equal(137u, (await Service.WaitAsync(new WaitRequest { Id = "c1" }, Ct).WaitAsync(TimeSpan.FromSeconds(10), Ct)).ExitStatus);
    }
}
