using System.Globalization;

namespace Shim.E2E.Tests;

/// <summary>containerd restarts while containers run: the shims keep them and answer again.</summary>
public sealed class RestartTests : E2ETest
{
    private async Task<string> WaitForStatusAsync(string id, string status)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        string ls = "";
        while (DateTime.UtcNow < deadline)
        {
            ls = (await CtrAsync("task", "ls")).Stdout;
            if (ls.Split('\n').Any(l => l.StartsWith(id + " ", StringComparison.Ordinal) && l.Contains(status, StringComparison.Ordinal)))
            {
                return ls;
            }
            await Task.Delay(100, Ct);
        }
        Assert.Fail($"{id} never became {status}: {ls}");
        return ls;
    }

    private static string Row(string table, string id) =>
        table.Split('\n').FirstOrDefault(l => l.StartsWith(id + " ", StringComparison.Ordinal)) ?? "";

    private static async Task<string> WaitForAsync(Func<Task<CommandResult>> probe, Func<string, bool> done)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        string last = "";
        while (DateTime.UtcNow < deadline)
        {
            last = (await probe()).Stdout;
            if (done(last))
            {
                return last;
            }
            await Task.Delay(100, Ct);
        }
        Assert.Fail("condition not reached: " + last);
        return last;
    }

    [Fact]
    public async Task Running_containers_survive_a_containerd_restart_and_an_exit_during_the_outage_is_reported()
    {
        string[] ids = ["rs1", "rs2", "rs3", "rs4"];
        foreach (var id in ids)
        {
            (await CtrAsync(RunArgs(id, detach: true, "sleep", "300"))).EnsureSuccess();
        }
        (await CtrAsync("task", "exec", "-d", "--fifo-dir", Ctrd.FifoDir, "--exec-id", "bg", "rs1", "sleep", "301")).EnsureSuccess();
        int victim = int.Parse((await File.ReadAllTextAsync(Path.Combine(Ctrd.BundleDir(Ns, "rs4"), "init.pid"), Ct)).Trim(), CultureInfo.InvariantCulture);

        // down: rs4's init is killed while nobody listens for events
        await Ctrd.RestartAsync(Ct, killBeforeStart: victim);

        foreach (var id in ids[..3])
        {
            await WaitForStatusAsync(id, "RUNNING");
            var r = await CtrAsync("task", "exec", "--fifo-dir", Ctrd.FifoDir, "--exec-id", "after-" + id, id, "echo", "still " + id);
            Assert.Equal($"still {id}\n", r.EnsureSuccess().Stdout);
        }
        // 1.x lists the exited task as STOPPED until it is deleted; 2.x cleans it up while loading
        // (the stock Go shims behave the same): either way it must not stay RUNNING
        var ls = await WaitForAsync(() => CtrAsync("task", "ls"), l => !Row(l, "rs4").Contains("RUNNING", StringComparison.Ordinal));
        if (Row(ls, "rs4").Contains("STOPPED", StringComparison.Ordinal))
        {
            var del = (await CtrAsync("task", "delete", "rs4")).EnsureSuccess();
            Assert.Contains("exit code 137", del.Stderr, StringComparison.Ordinal);
        }

        (await CtrAsync("task", "kill", "-s", "SIGKILL", "rs2")).EnsureSuccess();
        await WaitForStatusAsync("rs2", "STOPPED");
        (await CtrAsync("task", "delete", "rs2")).EnsureSuccess();
        Assert.Contains("bg", (await CtrAsync("task", "ps", "rs1")).EnsureSuccess().Stdout, StringComparison.Ordinal);
    }
}
