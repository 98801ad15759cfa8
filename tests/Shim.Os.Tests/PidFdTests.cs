using System.Globalization;
using Shim.Os.Tests.Support;

namespace Shim.Os.Tests;

[Collection(ProcessCollection.Name)]
public sealed class PidFdTests
{
    private static ChildProcess Sleep() =>
        Reaper.Instance.Spawn(new SpawnOptions { Path = "/bin/sleep", Args = ["sleep", "1000"] });

    [Fact]
    public async Task A_pidfd_signals_its_process_while_it_lives()
    {
        Reaper.Instance.Start();
        var child = Sleep();
        using var pidfd = PidFd.Open(child.Pid);
        Assert.NotNull(pidfd);
        Assert.True(pidfd.Signal(Signals.SIGKILL));
        var exit = await child.Exited.WaitAsync(TestIo.Timeout, TestIo.Ct);
        Assert.Equal(128 + Signals.SIGKILL, exit.Status);
    }

    [Fact]
    public async Task A_signal_through_a_pidfd_cannot_reach_a_process_that_reused_the_pid()
    {
        // needs root: ns_last_pid steers the next pid of this pid namespace to the dead child's number
        Reaper.Instance.Start();
        var first = Sleep();
        using var pidfd = PidFd.Open(first.Pid)!;
        Signals.Kill(first.Pid, Signals.SIGKILL);
        await first.Exited.WaitAsync(TestIo.Timeout, TestIo.Ct); // reaped: the pid is free again

        ChildProcess? reuser = null;
        var strangers = new List<ChildProcess>();
        try
        {
            // other processes on the machine may take the pid first: try again until ours gets it
            for (int attempt = 0; attempt < 500 && reuser is null; attempt++)
            {
                await File.WriteAllTextAsync("/proc/sys/kernel/ns_last_pid", (first.Pid - 1).ToString(CultureInfo.InvariantCulture), TestIo.Ct);
                var child = Sleep();
                if (child.Pid == first.Pid)
                {
                    reuser = child;
                }
                else
                {
                    strangers.Add(child);
                }
            }
            Assert.NotNull(reuser);

            Assert.False(pidfd.Signal(Signals.SIGKILL)); // ESRCH: the process it names is gone
            Assert.False(reuser.Exited.IsCompleted);
            Assert.True(Signals.Kill(reuser.Pid, 0)); // the pid's new owner is alive and untouched
        }
        finally
        {
            foreach (var child in strangers.Append(reuser).OfType<ChildProcess>())
            {
                Signals.Kill(child.Pid, Signals.SIGKILL);
                await child.Exited.WaitAsync(TestIo.Timeout, TestIo.Ct);
            }
        }
    }

    [Fact]
    public void Opening_a_pidfd_for_no_process_gives_null()
    {
        // pid_max is at most 2^22, so this pid never exists
#pragma warning disable CA2000 // asserted null: nothing to dispose
        Assert.Null(PidFd.Open(int.MaxValue));
#pragma warning restore CA2000
    }
}
