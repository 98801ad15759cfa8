namespace Shim.E2E.Tests;

/// <summary>
/// `ctr run -t` / `ctr task exec -t`: a real pty through the console socket. ctr wants a terminal on
/// its own stdin, so it runs under script(1), whose window size is set first with stty; ctr passes
/// that size on through ResizePty.
/// </summary>
public sealed class TerminalTests : E2ETest
{
    private async Task<CommandResult> InTerminalAsync(string ctrArgs, string stty = "cols 123 rows 45")
    {
        string ctr = $"{Prereqs.Which("ctr")} --address {Ctrd.Socket} -n {Ns} {ctrArgs}";
        return await Command.RunAsync("/usr/bin/script", ["-qefc", $"stty {stty}; exec {ctr}", "/dev/null"], timeout: TimeSpan.FromSeconds(60), ct: Ct);
    }

    // ctr sends the window size (ResizePty) after the process started: poll for it, bounded
    private const string WaitSize = "f=/tmp/size-$$; i=0; while [ $i -lt 100 ]; do stty size > $f 2>&1; grep -q ^[1-9] $f && break; i=$((i+1)); usleep 50000; done; echo size $(cat $f); rm -f $f";

    private string Run(string id, string command) =>
        $"run -t --rm --fifo-dir {Ctrd.FifoDir} --runtime {Runtime} --rootfs --env PATH=/bin {RootfsDir} {id} sh -c '{command.Replace("'", "", StringComparison.Ordinal)}'";

    [Fact]
    public async Task Run_with_a_tty_gets_a_pty_its_window_size_and_its_exit_code()
    {
        var r = await InTerminalAsync(Run("tty1", $"tty; {WaitSize}; exit 3"));
        Assert.True(r.ExitCode == 3, r.Describe());
        Assert.Contains("/dev/pts/", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("size 45 123", r.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Exec_with_a_tty_gets_its_own_pty()
    {
        (await CtrAsync(RunArgs("tty2", detach: true, "sleep", "300"))).EnsureSuccess();
        var r = await InTerminalAsync($"task exec -t --fifo-dir {Ctrd.FifoDir} --exec-id t1 tty2 sh -c '{WaitSize.Replace("'", "", StringComparison.Ordinal)}; tty; exit 4'", "cols 77 rows 22");
        Assert.True(r.ExitCode == 4, r.Describe());
        Assert.Contains("/dev/pts/", r.Stdout, StringComparison.Ordinal);
        Assert.Contains("size 22 77", r.Stdout, StringComparison.Ordinal);
    }
}
