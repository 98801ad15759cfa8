using System.Globalization;
using System.Text;
using Containerd.Task.V2;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Shim.Ttrpc;

namespace Shim.E2E.Tests;

/// <summary>Exits that must be reported: a pod sharing a pid namespace, an exec that never started, a paused container.</summary>
public sealed class ExitPathTests : E2ETest
{
    [Fact]
    public async Task A_container_in_another_containers_pid_namespace_reports_exit_3_while_its_child_still_writes()
    {
        // a pod with shareProcessNamespace: the container does not own its pid namespace, so nothing
        // kills its background writer when sh exits; the shim must (runc kill --all) before it reports
        (await CtrAsync(RunArgs("pod", detach: true, "sleep", "300"))).EnsureSuccess();
        int podPid = TaskPid((await CtrAsync("task", "ls")).EnsureSuccess().Stdout, "pod");
        for (int run = 0; run < 20; run++)
        {
            string id = "joiner" + run.ToString(CultureInfo.InvariantCulture);
            long started = Environment.TickCount64;
            var r = await CtrAsync(
                ["run", "--rm", "--fifo-dir", Ctrd.FifoDir, "--runtime", Runtime, "--with-ns", $"pid:/proc/{podPid}/ns/pid",
                 "--rootfs", "--env", "PATH=/bin", RootfsDir, id, "sh", "-c", "(while true; do echo xxxx; done) & sleep 1; exit 3"],
                stdin: null, timeout: TimeSpan.FromSeconds(20));
            Log($"run {run}: ctr exited {r.ExitCode} after {Environment.TickCount64 - started} ms with {r.StdoutBytes.Length} bytes of output");
            Assert.True(r.ExitCode == 3, $"run {run}: " + r.Describe());
            Assert.StartsWith("xxxx\n", r.Stdout, StringComparison.Ordinal);
        }
        // the kill reached only the joiner's cgroup: the pod's own process lives on
        Assert.Equal(podPid, TaskPid((await CtrAsync("task", "ls")).EnsureSuccess().Stdout, "pod", status: "RUNNING"));
    }

    [Fact]
    public async Task Wait_on_an_exec_whose_start_failed_answers_at_once()
    {
        (await CtrAsync(RunArgs("xf", detach: true, "sleep", "300"))).EnsureSuccess();
        await using var shim = await ShimClient.ConnectAsync(Ctrd, Ns, "xf", Ct);
        string service = shim.TaskApi;
        Task<T> Call<TRequest, T>(string method, TRequest request, MessageParser<T> parser)
            where TRequest : IMessage<TRequest>
            where T : IMessage<T> =>
            shim.Client.CallAsync(service, method, request, parser, TimeSpan.FromSeconds(30), null, Ct);
        const string spec = """{"args":["/no/such/binary"],"cwd":"/","env":["PATH=/bin"],"user":{"uid":0,"gid":0}}""";
        await Call("Exec", new ExecProcessRequest
        {
            Id = "xf",
            ExecId = "nobin",
            Spec = new Any { TypeUrl = "types.containerd.io/opencontainers/runtime-spec/1/Process", Value = ByteString.CopyFrom(Encoding.UTF8.GetBytes(spec)) },
        }, Empty.Parser);

        var (code, message) = await shim.StatusOfAsync(service, "Start", new StartRequest { Id = "xf", ExecId = "nobin" }, StartResponse.Parser, Ct);
        Assert.True(code != StatusCode.OK, "starting /no/such/binary must fail");
        Assert.Contains("no/such/binary", message, StringComparison.Ordinal);

        // the call would otherwise hang until the ttrpc timeout (30 s) or for ever
        var wait = await Call("Wait", new WaitRequest { Id = "xf", ExecId = "nobin" }, WaitResponse.Parser).WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Log($"Wait on the failed exec: exit status {wait.ExitStatus}");
        if (!Prereqs.IsStockRuntime)
        {
            Assert.Equal(255u, wait.ExitStatus); // containerd's shim answers 0, as if it had succeeded
        }
        await Call("Delete", new DeleteRequest { Id = "xf", ExecId = "nobin" }, DeleteResponse.Parser);
        var echo = await CtrAsync("task", "exec", "--fifo-dir", Ctrd.FifoDir, "--exec-id", "after", "xf", "echo", "still-running");
        Assert.Equal("still-running\n", echo.EnsureSuccess().Stdout);
    }

    [Fact]
    public async Task A_container_killed_while_paused_reports_its_execs_exit_then_its_own_and_is_left_thawed()
    {
        await using var events = Ctrd.StartEvents();
        await events.EnsureSubscribedAsync(Ctrd, Ns, Ct);
        (await CtrAsync(RunArgs("pz", detach: true, "sleep", "300"))).EnsureSuccess();
        (await CtrAsync("task", "exec", "-d", "--fifo-dir", Ctrd.FifoDir, "--exec-id", "bg", "pz", "sleep", "301")).EnsureSuccess();
        (await CtrAsync("task", "pause", "pz")).EnsureSuccess();
        TaskPid((await CtrAsync("task", "ls")).EnsureSuccess().Stdout, "pz", status: "PAUSED");

        (await CtrAsync("task", "kill", "-s", "SIGKILL", "pz")).EnsureSuccess();

        bool IsExit(CtrEvent e, string id) => e.Namespace == Ns && e.Topic == "/tasks/exit" && e.Json.Contains($"\"id\":\"{id}\"", StringComparison.Ordinal);
        var seen = await events.WaitForAsync(es => es.Any(e => IsExit(e, "pz")), TimeSpan.FromSeconds(20), "/tasks/exit of pz", Ct);
        var exits = seen.Where(e => IsExit(e, "pz") || IsExit(e, "bg")).ToList();
        Assert.True(exits.Count == 2 && IsExit(exits[0], "bg"), "the exec's exit comes before init's: " + string.Join(" | ", exits.Select(e => e.Json)));
        Assert.Contains("\"exit_status\":137", exits[1].Json, StringComparison.Ordinal);
        TaskPid((await CtrAsync("task", "ls")).EnsureSuccess().Stdout, "pz", status: "STOPPED");
        string freezer = $"/sys/fs/cgroup/freezer/{Ns}/pz/freezer.state";
        if (File.Exists(freezer))
        {
            Assert.Equal("THAWED", (await File.ReadAllTextAsync(freezer, Ct)).Trim());
        }
        var del = (await CtrAsync("task", "delete", "pz")).EnsureSuccess();
        Assert.Contains("exit code 137", del.Stderr, StringComparison.Ordinal);
    }

    // "TASK    PID     STATUS" then one row per task
    private static int TaskPid(string table, string id, string status = "RUNNING")
    {
        var row = table.Split('\n').Skip(1)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .FirstOrDefault(f => f.Length >= 3 && f[0] == id);
        Assert.True(row is not null && row[2] == status, $"task {id} is not {status}: {table}");
        return int.Parse(row[1], CultureInfo.InvariantCulture);
    }
}
