using System.Globalization;
using Containerd.Task.V2;
using Google.Protobuf.WellKnownTypes;
using Shim.Protos;
using Shim.Ttrpc;

namespace Shim.E2E.Tests;

/// <summary>
/// Checkpoint and restore through runc and CRIU (the criu of scripts/get-criu.sh, first on the
/// daemon's PATH). ctr 1.6 sends runc's CheckpointOptions from `ctr container checkpoint --task`
/// whatever the runtime, while `ctr task checkpoint --image-path/--exit` only does for runtime
/// names it knows as runc: options ctr cannot send for our runtime go over the shim's ttrpc.
/// </summary>
public sealed class CheckpointTests : E2ETest
{
    private readonly string _suffix = Guid.NewGuid().ToString("N")[..8];

    [Fact]
    public async Task A_counting_container_restored_from_a_checkpoint_counts_on_from_where_it_was()
    {
        Prereqs.RequireCriuOrSkip();
        await using var events = Ctrd.StartEvents();
        await events.EnsureSubscribedAsync(Ctrd, Ns, Ct); // creates the namespace: before anything else
        await ImportAsync();
        string src = "cks-" + _suffix, dst = "ckd-" + _suffix, reference = "localhost/rcs/checkpoint:" + _suffix;
        string counter = "/tmp/count-" + _suffix;
        (await CtrAsync("run", "-d", "--fifo-dir", Ctrd.FifoDir, "--runtime", Runtime, OciImage.Name, src,
            "sh", "-c", $"i=0; while true; do i=$((i+1)); echo $i > {counter}; sleep 0.1; done")).EnsureSuccess();
        int before = await WaitForCountAsync(src, counter, atLeast: 30);

        var started = DateTime.UtcNow;
        // pauses the task, Checkpoint RPC (runc checkpoint --leave-running), resumes; image in the content store
        (await CtrAsync(["container", "checkpoint", "--task", src, reference], stdin: null, TimeSpan.FromSeconds(120))).EnsureSuccess();
        Log($"checkpoint took {(DateTime.UtcNow - started).TotalMilliseconds:0} ms; count before it: {before}");
        Assert.Contains("RUNNING", await TaskLineAsync(src), StringComparison.Ordinal); // left running

        // stop the original, so that only the restored copy counts
        (await CtrAsync("task", "kill", "-s", "SIGKILL", src)).EnsureSuccess();
        await WaitForStatusAsync(src, "STOPPED");
        (await CtrAsync("task", "delete", src)).EnsureSuccess();

        started = DateTime.UtcNow;
        // new container from the checkpoint (fresh snapshot of the image), Create with the checkpoint, Start = runc restore
        var unpackedBefore = DaemonCheckpointDirs();
        var restore = await CtrAsync(["container", "restore", "--live", dst, reference], stdin: null, TimeSpan.FromSeconds(120));
        RememberFifoDirs(dst);
        foreach (var dir in DaemonCheckpointDirs().Except(unpackedBefore)) { RemoveAfterwards(dir); }
        restore.EnsureSuccess();
        Log($"restore took {(DateTime.UtcNow - started).TotalMilliseconds:0} ms");
        Assert.Contains("RUNNING", await TaskLineAsync(dst), StringComparison.Ordinal);
        bool Of(CtrEvent e, string topic) => e.Namespace == Ns && e.Topic == topic && e.Json.Contains($"\"{dst}\"", StringComparison.Ordinal);
        var seen = await events.WaitForAsync(es => es.Any(e => Of(e, "/tasks/start")), TimeSpan.FromSeconds(20), $"/tasks/start of {dst}", Ct);
        var create = seen.First(e => Of(e, "/tasks/create"));
        Assert.Contains("\"checkpoint\":", create.Json, StringComparison.Ordinal);   // Create carried the unpacked image
        Assert.DoesNotMatch("\"pid\":[1-9]", create.Json);                        // and no process existed yet
        var order = seen.Where(e => Of(e, "/tasks/create") || Of(e, "/tasks/start")).Select(e => e.Topic).ToList();
        Assert.Equal(["/tasks/create", "/tasks/start"], order);

        // the restored shell writes the counter into the new container's own snapshot: a value there
        // at or above the one seen before the checkpoint can only come from the restored memory
        int first = await WaitForCountAsync(dst, counter, atLeast: 1);
        Assert.True(first >= before, $"restored counter {first} is below {before} seen before the checkpoint: it started over");
        int later = await WaitForCountAsync(dst, counter, atLeast: first + 5);
        Log($"restored counter: {first}, then {later}");

        var pid = int.Parse((await TaskLineAsync(dst)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
        Assert.True(pid > 0, "the restored task has a pid");
        (await CtrAsync("task", "kill", "-s", "SIGKILL", dst)).EnsureSuccess();
        await WaitForStatusAsync(dst, "STOPPED");
        (await CtrAsync("task", "delete", dst)).EnsureSuccess();
    }

    [Fact]
    public async Task Checkpoint_with_exit_stops_the_container_and_its_exit_is_reported()
    {
        Prereqs.RequireCriuOrSkip();
        string id = "ckx-" + _suffix;
        (await CtrAsync(RunArgs(id, detach: true, "sleep", "300"))).EnsureSuccess();
        string image = TempDir("rcs-ckpt-");
        string work = TempDir("rcs-ckwork-");
        await using var shim = await ShimClient.ConnectAsync(Ctrd, Ns, id, Ct);

        await shim.CallAsync("Checkpoint", new CheckpointTaskRequest
        {
            Id = id,
            Path = image,
            Options = TypeUrls.Pack(new Containerd.Runc.V1.CheckpointOptions { Exit = true, WorkPath = work }),
        }, Empty.Parser, Ct);

        Assert.True(File.Exists(Path.Combine(image, "inventory.img")), "CRIU wrote its images to the request's path");
        Assert.True(File.Exists(Path.Combine(work, "dump.log")), "CRIU's log is kept in the given work path");
        var wait = await shim.CallAsync("Wait", new WaitRequest { Id = id }, WaitResponse.Parser, Ct);
        Assert.Equal(137u, wait.ExitStatus); // runc checkpoint without --leave-running kills the dumped tree
        Assert.Contains("STOPPED", await TaskLineAsync(id), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Checkpoint_of_a_stopped_task_is_refused()
    {
        string id = "ckp-" + _suffix;
        (await CtrAsync(RunArgs(id, detach: true, "sh", "-c", "exit 3"))).EnsureSuccess();
        await WaitForStatusAsync(id, "STOPPED");
        string image = TempDir("rcs-ckpt-");
        await using var shim = await ShimClient.ConnectAsync(Ctrd, Ns, id, Ct);

        var (code, message) = await shim.StatusOfAsync(shim.TaskApi, "Checkpoint", new CheckpointTaskRequest { Id = id, Path = image }, Empty.Parser, Ct);

        Assert.True(code == StatusCode.FailedPrecondition || (Prereqs.IsStockRuntime && code == StatusCode.Unknown), $"{code}: {message}");
        Assert.Empty(Directory.EnumerateFileSystemEntries(image));
    }

    // `ctr container restore` has no --fifo-dir: its FIFOs go to /run/containerd/fifo/<random>/<id>-std*
    private void RememberFifoDirs(string id)
    {
        try
        {
            foreach (var d in Directory.EnumerateDirectories("/run/containerd/fifo"))
            {
                if (Directory.EnumerateFileSystemEntries(d, id + "-*").Any()) { RemoveAfterwards(d); }
            }
        }
        catch (DirectoryNotFoundException) { }
    }

    // containerd 1.6 unpacks the checkpoint for Create into $XDG_RUNTIME_DIR (here /tmp)/ctrd-checkpoint*
    // and never removes it; the ones that appear during our restore are ours
    private static HashSet<string> DaemonCheckpointDirs() =>
        [.. Directory.EnumerateDirectories(Path.GetTempPath(), "ctrd-checkpoint*").Where(d => File.Exists(Path.Combine(d, "inventory.img")))];

    private async Task ImportAsync()
    {
        var archive = await OciImage.GetAsync();
        (await CtrAsync(["images", "import", archive], stdin: null, TimeSpan.FromSeconds(120))).EnsureSuccess();
    }

    private async Task<string> TaskLineAsync(string id) =>
        (await CtrAsync("task", "ls")).EnsureSuccess().Stdout.Split('\n').FirstOrDefault(l => l.StartsWith(id + " ", StringComparison.Ordinal)) ?? "";

    private async Task WaitForStatusAsync(string id, string status)
    {
        for (var until = DateTime.UtcNow.AddSeconds(20); !(await TaskLineAsync(id)).Contains(status, StringComparison.Ordinal);)
        {
            Assert.True(DateTime.UtcNow < until, $"task {id} did not become {status} within 20 s: {await TaskLineAsync(id)}");
            await Task.Delay(50, Ct);
        }
    }

    private int _reads;

    /// <summary>Reads the counter file through an exec until it holds at least <paramref name="atLeast"/>.</summary>
    private async Task<int> WaitForCountAsync(string id, string file, int atLeast)
    {
        string last = "";
        for (var until = DateTime.UtcNow.AddSeconds(30); DateTime.UtcNow < until; await Task.Delay(100, Ct))
        {
            var r = await CtrAsync("task", "exec", "--fifo-dir", Ctrd.FifoDir, "--exec-id", $"rd{Interlocked.Increment(ref _reads)}", id, "cat", file);
            last = r.Describe();
            if (r.ExitCode == 0 && int.TryParse(r.Stdout.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n >= atLeast)
            {
                return n;
            }
        }
        throw new TimeoutException($"counter {file} in {id} did not reach {atLeast} within 30 s; last read: {last}");
    }
}
