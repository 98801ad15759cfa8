namespace Shim.E2E.Tests;

/// <summary>
/// Containers from an imported image: containerd passes the snapshot as rootfs mounts in
/// Create, the shim mounts them on the bundle's rootfs/ and unmounts them on delete.
/// </summary>
public sealed class ImageTests : E2ETest
{
    [Fact]
    public async Task A_container_from_an_image_runs_on_its_snapshot()
    {
        await ImportAsync();

        var r = await CtrAsync("run", "--rm", "--fifo-dir", Ctrd.FifoDir, "--runtime", Runtime, OciImage.Name, "img1",
            "sh", "-c", "cat /etc/passwd; echo written > /tmp/f; cat /tmp/f");

        Assert.True(r.ExitCode == 0, r.Describe());
        Assert.Equal("root:x:0:0:root:/root:/bin/sh\nwritten\n", r.Stdout);
    }

    [Fact]
    public async Task The_rootfs_mount_lives_exactly_as_long_as_the_task()
    {
        await ImportAsync();
        const string id = "img2";
        (await CtrAsync("run", "-d", "--fifo-dir", Ctrd.FifoDir, "--runtime", Runtime, OciImage.Name, id, "sleep", "300")).EnsureSuccess();
        var rootfs = Path.Combine(Ctrd.BundleDir(Ns, id), "rootfs");

        Assert.Contains(rootfs, ProcFs.MountsUnder(rootfs));

        (await CtrAsync("task", "kill", "-s", "SIGKILL", id)).EnsureSuccess();
        for (var until = DateTime.UtcNow.AddSeconds(10); !(await CtrAsync("task", "ls")).Stdout.Contains("STOPPED", StringComparison.Ordinal);)
        {
            Assert.True(DateTime.UtcNow < until, "task did not stop within 10 s of SIGKILL");
            await Task.Delay(50, Ct);
        }
        (await CtrAsync("task", "delete", id)).EnsureSuccess();

        Assert.Empty(ProcFs.MountsUnder(rootfs));
        (await CtrAsync("container", "rm", id)).EnsureSuccess();
    }

    private async Task ImportAsync()
    {
        var archive = await OciImage.GetAsync();
        (await CtrAsync(["images", "import", archive], stdin: null, TimeSpan.FromSeconds(120))).EnsureSuccess();
    }
}
