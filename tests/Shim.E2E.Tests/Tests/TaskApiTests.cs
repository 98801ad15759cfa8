using System.Globalization;
using Containerd.Task.V2;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace Shim.E2E.Tests;

/// <summary>Pause/resume, update, ps with exec ids, detached execs and many execs at once.</summary>
public sealed class TaskApiTests : E2ETest
{
    [Fact]
    public async Task Pause_and_resume_show_in_task_ls_and_events_and_block_exec_while_paused()
    {
        await using var events = Ctrd.StartEvents();
        await events.EnsureSubscribedAsync(Ctrd, Ns, Ct);
        (await CtrAsync(RunArgs("pr1", detach: true, "sleep", "300"))).EnsureSuccess();

        (await CtrAsync("task", "pause", "pr1")).EnsureSuccess();
        Assert.Contains("PAUSED", (await CtrAsync("task", "ls")).EnsureSuccess().Stdout, StringComparison.Ordinal);
        var execPaused = await CtrAsync("task", "exec", "--fifo-dir", Ctrd.FifoDir, "--exec-id", "ep", "pr1", "true");
        Assert.True(execPaused.ExitCode != 0, "exec into a paused container must fail: " + execPaused.Describe());

        (await CtrAsync("task", "resume", "pr1")).EnsureSuccess();
        Assert.Contains("RUNNING", (await CtrAsync("task", "ls")).EnsureSuccess().Stdout, StringComparison.Ordinal);
        await events.WaitForAsync(es => es.Any(e => e.Namespace == Ns && e.Topic == "/tasks/paused") && es.Any(e => e.Namespace == Ns && e.Topic == "/tasks/resumed"),
            TimeSpan.FromSeconds(20), "/tasks/paused and /tasks/resumed", Ct);
        var r = await CtrAsync("task", "exec", "--fifo-dir", Ctrd.FifoDir, "--exec-id", "after", "pr1", "echo", "thawed");
        Assert.Equal("thawed\n", r.EnsureSuccess().Stdout);
    }

    [Fact]
    public async Task Update_changes_the_memory_limit_in_the_containers_cgroup()
    {
        (await CtrAsync(RunArgs("up1", detach: true, "sleep", "300"))).EnsureSuccess();
        await using var shim = await ShimClient.ConnectAsync(Ctrd, Ns, "up1", Ct);
        const long limit = 48L * 1024 * 1024;
        await shim.CallAsync("Update", new UpdateTaskRequest
        {
            Id = "up1",
            Resources = new Any
            {
                TypeUrl = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources",
                Value = ByteString.CopyFromUtf8($"{{\"memory\":{{\"limit\":{limit}}}}}"),
            },
        }, Empty.Parser, Ct);
        // ctr's default cgroups path is /<namespace>/<id>
        string file = $"/sys/fs/cgroup/memory/{Ns}/up1/memory.limit_in_bytes";
        Assert.Equal(limit.ToString(CultureInfo.InvariantCulture), (await File.ReadAllTextAsync(file, Ct)).Trim());
    }

    [Fact]
    public async Task Ps_names_exec_processes_and_a_detached_exec_can_be_killed_by_exec_id()
    {
        await using var events = Ctrd.StartEvents();
        await events.EnsureSubscribedAsync(Ctrd, Ns, Ct);
        (await CtrAsync(RunArgs("ps1", detach: true, "sleep", "300"))).EnsureSuccess();
        (await CtrAsync("task", "exec", "-d", "--fifo-dir", Ctrd.FifoDir, "--exec-id", "bg1", "ps1", "sleep", "301")).EnsureSuccess();

        var ps = (await CtrAsync("task", "ps", "ps1")).EnsureSuccess().Stdout;
        Assert.Contains("bg1", ps, StringComparison.Ordinal);
        Assert.Equal(3, ps.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length); // header, init, exec

        (await CtrAsync("task", "kill", "--exec-id", "bg1", "-s", "SIGTERM", "ps1")).EnsureSuccess();
        var seen = await events.WaitForAsync(es => es.Any(e => e.Namespace == Ns && e.Topic == "/tasks/exit" && e.Json.Contains("\"bg1\"", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(20), "/tasks/exit of bg1", Ct);
        Assert.Contains("\"exit_status\":143", seen.First(e => e.Topic == "/tasks/exit" && e.Json.Contains("\"bg1\"", StringComparison.Ordinal)).Json, StringComparison.Ordinal);
        Assert.Contains("RUNNING", (await CtrAsync("task", "ls")).EnsureSuccess().Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Twenty_execs_at_once_each_return_their_own_exit_code()
    {
        (await CtrAsync(RunArgs("many1", detach: true, "sleep", "300"))).EnsureSuccess();
        var runs = Enumerable.Range(0, 20).Select(i =>
            CtrAsync("task", "exec", "--fifo-dir", Ctrd.FifoDir, "--exec-id", $"x{i}", "many1", "sh", "-c", $"echo e{i}; exit {i}")).ToArray();
        var results = await Task.WhenAll(runs);
        for (int i = 0; i < results.Length; i++)
        {
            Assert.True(results[i].ExitCode == i, results[i].Describe());
            Assert.Equal($"e{i}\n", results[i].Stdout);
        }
    }
}
