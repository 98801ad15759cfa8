using System.Text.RegularExpressions;

namespace Shim.E2E.Tests;

/// <summary>
/// A container that logs to a file (`--log-uri file://`) on a volume that stops taking writes
/// (fsfreeze on a loop-mounted ext4) stalls only its own output, and its process once the pipe
/// fills: the other container of the same grouped shim is still served (exec with its output,
/// state, kill, its exit, delete), and once the volume thaws every line reaches the file.
/// </summary>
public sealed class FrozenLogTests : E2ETest
{
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_log_file_on_a_frozen_volume_stalls_nothing_else_in_its_grouped_shim_and_loses_no_line()
    {
        await using var volume = await FreezableFilesystem.CreateAsync(TempDir("rcs-frozen-"), Ct);
        string group = "frozen-" + Ns;
        string log = Path.Combine(volume.MountPoint, "writer.log");
        (await CtrAsync(Grouped(RunArgs("other", detach: true, "sleep", "600"), group))).EnsureSuccess();
        string[] writer = Grouped(RunArgs("writer", detach: true, "sh", "-c", "i=0; while :; do i=$((i+1)); echo line $i; usleep 2000; done"), group);
        (await CtrAsync([writer[0], "--log-uri", "file://" + log, .. writer[1..]], stdin: null)).EnsureSuccess();
        var shims = ProcFs.ShimPids(Ctrd.Socket);
        Assert.True(shims.Count == 1, $"both containers of one group should share one shim, found {shims.Count}");
        await WaitForAsync(() => CountLines(log) >= 10, "the writer's first lines in its log file");

        await volume.FreezeAsync(Ct);
        await WaitForAsync(() => ProcFs.BlockedThreads(shims[0]) > 0, "the shim's write into the frozen log blocked in the kernel");

        // the neighbour is served while the log's write is held
        var exec = await CtrAsync(["task", "exec", "--fifo-dir", Ctrd.FifoDir, "--exec-id", "e1", "other", "echo", "served"], stdin: null, CallTimeout);
        Assert.True(exec.ExitCode == 0 && exec.Stdout == "served\n", $"exec into the neighbour: {exec.Describe()}");
        Assert.Matches(TaskLine("other", "RUNNING"), await TaskListAsync());
        (await CtrAsync(["task", "kill", "-s", "SIGKILL", "other"], stdin: null, CallTimeout)).EnsureSuccess();
        await WaitForAsync(async () => TaskLine("other", "STOPPED").IsMatch(await TaskListAsync()), "the neighbour's exit reported");
        (await CtrAsync(["task", "delete", "other"], stdin: null, CallTimeout)).EnsureSuccess();
        Assert.Matches(TaskLine("writer", "RUNNING"), await TaskListAsync());
        Assert.True(ProcFs.BlockedThreads(shims[0]) > 0, "the log's write was still held when the neighbour was done");

        await volume.ThawAsync(Ct);
        int atThaw = CountLines(log);
        await WaitForAsync(() => CountLines(log) > atThaw + 10, "the writer's lines flowing again after the thaw");
        (await CtrAsync(["task", "kill", "-s", "SIGKILL", "writer"], stdin: null, CallTimeout)).EnsureSuccess();
        await WaitForAsync(async () => TaskLine("writer", "STOPPED").IsMatch(await TaskListAsync()), "the writer's exit reported");
        (await CtrAsync(["task", "delete", "writer"], stdin: null, CallTimeout)).EnsureSuccess();

        // whole lines, numbered from 1 without a gap: nothing written while frozen was lost
        var lines = (await File.ReadAllLinesAsync(log, Ct)).Where(l => l.Length > 0).ToArray();
        Log($"{lines.Length} lines logged, {atThaw} at the thaw");
        Assert.Equal(Enumerable.Range(1, lines.Length).Select(i => $"line {i}"), lines);
        // both containers gone: the grouped shim ends on its own after Shutdown, which containerd does not wait for
        await WaitForAsync(() => ProcFs.ShimPids(Ctrd.Socket).Count == 0, $"the grouped shim {shims[0]} to exit");
    }

    private async Task<string> TaskListAsync() =>
        (await CtrAsync(["task", "ls"], stdin: null, CallTimeout)).EnsureSuccess().Stdout;

    private static Regex TaskLine(string id, string status) => new($@"(?m)^{id}\s+\d+\s+{status}");

    private static int CountLines(string path) => File.Exists(path) ? File.ReadLines(path).Count() : 0;

    private static Task WaitForAsync(Func<bool> condition, string what) => WaitForAsync(() => Task.FromResult(condition()), what);

    private static async Task WaitForAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + CallTimeout;
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"not seen within {CallTimeout.TotalSeconds} s: {what}");
            await Task.Delay(50, Ct);
        }
    }
}
