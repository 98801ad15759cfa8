using System.Runtime.InteropServices;
using Shim.Os.Tests.Support;
using Shim.Os.Mounting;

namespace Shim.Os.Tests;

[Collection(ProcessCollection.Name)]
public sealed class SpawnerTests
{
    [Fact]
    public async Task A_child_that_exits_7_is_reported_with_status_7()
    {
        var child = Children.Sh("exit 7");
        var exit = await child.Exited.WaitAsync(TestIo.Timeout, TestIo.Ct);
        Assert.Equal(child.Pid, exit.Pid);
        Assert.Equal(7, exit.Status);
    }

    [Fact]
    public async Task A_child_killed_by_sigkill_is_reported_as_137()
    {
        var child = Reaper.Instance.Spawn(new SpawnOptions { Path = "/bin/sleep", Args = ["sleep", "30"] });
        Assert.True(Signals.Kill(child.Pid, Signals.SIGKILL));
        var exit = await child.Exited.WaitAsync(TestIo.Timeout, TestIo.Ct);
        Assert.Equal(137, exit.Status);
    }

    [Fact]
    public async Task Killing_a_reaped_pid_returns_false()
    {
        var child = Children.Sh("exit 0");
        await child.Exited.WaitAsync(TestIo.Timeout, TestIo.Ct);
        Assert.False(Signals.Kill(child.Pid, 0));
    }

    [Fact]
    public async Task Mapped_fds_1_and_3_reach_the_child()
    {
        var (out1, in1) = Pipes.Create();
        var (out3, in3) = Pipes.Create();
        using (out1)
        using (out3)
        {
            ChildProcess child;
            using (in1)
            using (in3)
            {
                child = Children.Sh("echo one; echo three >&3",
                    new Dictionary<int, SafeHandle> { [1] = in1, [3] = in3 });
            }
            Assert.Equal("one\n", await TestIo.ReadAllTextAsync(out1));
            Assert.Equal("three\n", await TestIo.ReadAllTextAsync(out3));
            Assert.Equal(0, (await child.Exited.WaitAsync(TestIo.Timeout, TestIo.Ct)).Status);
        }
    }

    [Fact]
    public async Task Fd_mappings_that_swap_descriptor_numbers_land_on_the_right_pipes()
    {
        // Each handle's own fd number is the other's target: a naive dup2 sequence would
        // overwrite one source before copying it.
        var (readA, writeA) = Pipes.Create();
        var (readB, writeB) = Pipes.Create();
        using (readA)
        using (readB)
        {
            int a = (int)writeA.DangerousGetHandle();
            int b = (int)writeB.DangerousGetHandle();
            ChildProcess child;
            using (writeA)
            using (writeB)
            {
                child = Reaper.Instance.Spawn(new SpawnOptions
                {
                    Path = "/bin/bash",
                    Args = ["bash", "-c", $"echo to-b >&{a}; echo to-a >&{b}"],
                    Fds = new Dictionary<int, SafeHandle> { [a] = writeB, [b] = writeA },
                });
            }
            Assert.Equal("to-a\n", await TestIo.ReadAllTextAsync(readA));
            Assert.Equal("to-b\n", await TestIo.ReadAllTextAsync(readB));
            await child.Exited.WaitAsync(TestIo.Timeout, TestIo.Ct);
        }
    }

    [Fact]
    public async Task One_handle_can_serve_as_both_stdout_and_stderr()
    {
        var (read, write) = Pipes.Create();
        using (read)
        {
            using (write)
            {
                Children.Sh("echo out; echo err >&2", new Dictionary<int, SafeHandle> { [1] = write, [2] = write });
            }
            Assert.Equal("out\nerr\n", await TestIo.ReadAllTextAsync(read));
        }
    }

    [Fact]
    public async Task Unmapped_stdio_is_dev_null_and_nothing_else_is_inherited()
    {
        var (output, _) = await Children.RunAsync(
            "readlink /proc/$$/fd/0; readlink /proc/$$/fd/2; ls /proc/$$/fd | tr '\\n' ' '");
        Assert.Equal("/dev/null\n/dev/null\n0 1 2 ", output);
    }

    [Fact]
    public async Task The_child_starts_in_the_requested_working_directory()
    {
        using var dir = TestIo.CreateTempDir();
        var (output, _) = await Children.RunAsync("pwd -P", workingDirectory: dir.Path);
        Assert.Equal(Mounts.RealPath(dir.Path) + "\n", output);
    }

    [Fact]
    public async Task An_explicit_environment_replaces_ours()
    {
        var (output, _) = await Children.RunAsync("echo \"$FOO|$HOME\"", environment: ["FOO=bar baz"]);
        Assert.Equal("bar baz|\n", output);
    }

    [Fact]
    public async Task A_null_environment_inherits_what_dotnet_sees()
    {
        Environment.SetEnvironmentVariable("SHIM_OS_TEST_INHERIT", "yes");
        var (output, _) = await Children.RunAsync("echo \"$SHIM_OS_TEST_INHERIT\"");
        Assert.Equal("yes\n", output);
    }

    [Fact]
    public async Task A_new_session_makes_the_child_a_session_and_group_leader()
    {
        var (read, write) = Pipes.Create();
        using (read)
        {
            ChildProcess child;
            using (write)
            {
                child = Reaper.Instance.Spawn(new SpawnOptions
                {
                    Path = "/bin/sh",
                    Args = ["sh", "-c", "cut -d' ' -f5,6 /proc/$$/stat"],
                    Fds = new Dictionary<int, SafeHandle> { [1] = write },
                    NewSession = true,
                    NewProcessGroup = true,
                });
            }
            string output = await TestIo.ReadAllTextAsync(read);
            Assert.Equal($"{child.Pid} {child.Pid}\n", output);
        }
    }

    [Fact]
    public async Task A_new_process_group_is_led_by_the_child()
    {
        var (read, write) = Pipes.Create();
        using (read)
        {
            ChildProcess child;
            using (write)
            {
                child = Reaper.Instance.Spawn(new SpawnOptions
                {
                    Path = "/bin/sh",
                    Args = ["sh", "-c", "cut -d' ' -f5 /proc/$$/stat"],
                    Fds = new Dictionary<int, SafeHandle> { [1] = write },
                    NewProcessGroup = true,
                });
            }
            Assert.Equal($"{child.Pid}\n", await TestIo.ReadAllTextAsync(read));
        }
    }

    [Fact]
    public void A_missing_executable_fails_with_enoent()
    {
        var ex = Assert.Throws<ErrnoException>(() =>
            Reaper.Instance.Spawn(new SpawnOptions { Path = "/nonexistent/binary", Args = ["x"] }));
        Assert.Equal(2, ex.Errno);
        Assert.StartsWith("posix_spawn /nonexistent/binary: ", ex.Message);
    }

    [Fact]
    public void A_relative_executable_path_is_rejected()
    {
        Assert.Throws<ArgumentException>(() => Spawner.Spawn(new SpawnOptions { Path = "sh", Args = ["sh"] }));
    }

    [Fact]
    public async Task Blocked_signals_reach_the_child_mask_and_children_get_an_empty_mask_by_default()
    {
        // grep, not sh: dash clears its signal mask at start-up.
        Assert.Equal("SigBlk:\t0000000000004002\n", await SigBlkOfAsync([Signals.SIGTERM, Signals.SIGINT]));   // SIGINT bit 1, SIGTERM bit 14
        Assert.Equal("SigBlk:\t0000000000000000\n", await SigBlkOfAsync(null));
    }

    private static async Task<string> SigBlkOfAsync(IReadOnlyList<int>? blocked)
    {
        var (read, write) = Pipes.Create();
        using (read)
        {
            ChildProcess child;
            using (write)
            {
                child = Reaper.Instance.Spawn(new SpawnOptions
                {
                    Path = "/bin/grep",
                    Args = ["grep", "SigBlk", "/proc/self/status"],
                    Fds = new Dictionary<int, SafeHandle> { [1] = write },
                    BlockedSignals = blocked,
                });
            }
            string output = await TestIo.ReadAllTextAsync(read);
            await child.Exited.WaitAsync(TestIo.Timeout, TestIo.Ct);
            return output;
        }
    }
}
