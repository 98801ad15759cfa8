using System.Globalization;

namespace Shim.E2E.Tests;

/// <summary>The shim is SIGKILLed: containerd runs `delete`, which must report what really happened.</summary>
public sealed class ShimCrashTests : E2ETest
{
    private static bool Alive(int pid) =>
        Directory.Exists($"/proc/{pid}") && !File.ReadAllText($"/proc/{pid}/stat").Contains(") Z ", StringComparison.Ordinal);

    [Fact]
    public async Task After_the_shim_is_killed_delete_reports_the_real_exit_status_of_an_exited_container()
    {
        OursOnly("the Go shim always reports 137 after it died");
        await using var events = Ctrd.StartEvents();
        await events.EnsureSubscribedAsync(Ctrd, Ns, Ct);
        (await CtrAsync(RunArgs("crash1", detach: true, "sh", "-c", "exit 5"))).EnsureSuccess();
        await events.WaitForAsync(es => es.Any(e => e.Namespace == Ns && e.Topic == "/tasks/exit"), TimeSpan.FromSeconds(20), "/tasks/exit", Ct);

        var shim = Assert.Single(ProcFs.ShimPids(Ctrd.Socket, "crash1"));
        Signals.Kill(shim, 9);

        var seen = await events.WaitForAsync(es => es.Any(e => e.Namespace == Ns && e.Topic == "/tasks/delete"), TimeSpan.FromSeconds(30), "/tasks/delete after the shim died", Ct);
        var delete = seen.First(e => e.Namespace == Ns && e.Topic == "/tasks/delete");
        Assert.Contains("\"exit_status\":5", delete.Json, StringComparison.Ordinal);
        Assert.DoesNotContain("crash1", (await CtrAsync("task", "ls", "-q")).EnsureSuccess().Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task After_the_shim_is_killed_a_running_containers_processes_are_gone_and_a_new_container_starts()
    {
        await using var events = Ctrd.StartEvents();
        await events.EnsureSubscribedAsync(Ctrd, Ns, Ct);
        (await CtrAsync(RunArgs("crash2", detach: true, "sleep", "300"))).EnsureSuccess();
        int init = int.Parse((await File.ReadAllTextAsync(Path.Combine(Ctrd.BundleDir(Ns, "crash2"), "init.pid"), Ct)).Trim(), CultureInfo.InvariantCulture);
        var shim = Assert.Single(ProcFs.ShimPids(Ctrd.Socket, "crash2"));
        Signals.Kill(shim, 9);

        var seen = await events.WaitForAsync(es => es.Any(e => e.Namespace == Ns && e.Topic == "/tasks/delete"), TimeSpan.FromSeconds(30), "/tasks/delete after the shim died", Ct);
        Assert.Contains("\"exit_status\":137", seen.First(e => e.Namespace == Ns && e.Topic == "/tasks/delete").Json, StringComparison.Ordinal);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (Alive(init) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50, Ct);
        }
        Assert.False(Alive(init), "the container's init outlived its shim's cleanup");

        var r = await RunAsync("after-crash", "echo", "fine");
        Assert.Equal("fine\n", r.EnsureSuccess().Stdout);
    }
}

internal static class Signals
{
    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    [System.Runtime.InteropServices.DefaultDllImportSearchPaths(System.Runtime.InteropServices.DllImportSearchPath.SafeDirectories)]
    private static extern int kill(int pid, int sig);

    public static void Kill(int pid, int signal) => _ = kill(pid, signal);
}
