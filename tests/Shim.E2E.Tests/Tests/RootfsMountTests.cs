namespace Shim.E2E.Tests;

/// <summary>
/// Rootfs mounts beyond a plain mount(2) of the snapshotter's options: an image of more layers
/// than fit one page of overlay options, and a user-namespaced container whose layers containerd
/// 2.x asks to be idmapped (uidmap=/gidmap= in the overlay options).
/// </summary>
public sealed class RootfsMountTests : E2ETest
{
    [Fact]
    public async Task An_image_of_1_plus_120_layers_runs_and_sees_every_layer()
    {
        var archive = await OciImage.GetLayeredAsync();
        (await CtrAsync(["images", "import", archive], stdin: null, TimeSpan.FromSeconds(300))).EnsureSuccess();

        var r = await CtrAsync("run", "--rm", "--fifo-dir", Ctrd.FifoDir, "--runtime", Runtime, OciImage.LayeredName, "layers1",
            "sh", "-c", "ls /layers | wc -l; cat /etc/passwd; echo written > /tmp/f; cat /tmp/f");

        Assert.True(r.ExitCode == 0, r.Describe());
        Assert.Equal($"{OciImage.ExtraLayers}\nroot:x:0:0:root:/root:/bin/sh\nwritten\n", r.Stdout);
        Assert.Empty(ProcFs.MountsUnder(Path.Combine(Ctrd.Dir, "state")));
    }

    [Fact]
    public async Task A_user_namespaced_container_sees_its_mapping_and_the_images_root_owned_files_as_root()
    {
        (await CtrAsync(["images", "import", await OciImage.GetAsync()], stdin: null, TimeSpan.FromSeconds(120))).EnsureSuccess();
        // the container's root is uid 200000 on the host and must reach its rootfs in the bundle
        File.SetUnixFileMode(Ctrd.Dir, (UnixFileMode)Convert.ToInt32("711", 8));
        // containerd 2.x passes the mapping to the shim as uidmap=/gidmap= overlay options (idmapped
        // layers); 1.x ctr chowns a copy of the snapshot instead (no --remap-labels)
        bool idmappedLayers = Ctrd.Line.Major >= 2;
        string[] remap = idmappedLayers ? ["--remap-labels"] : [];

        var r = await CtrAsync(["run", "--rm", "--fifo-dir", Ctrd.FifoDir, "--runtime", Runtime,
            "--uidmap", "0:200000:65536", "--gidmap", "0:200000:65536", .. remap, OciImage.Name, "userns1",
            "sh", "-c", "cat /proc/self/uid_map; stat -c %u:%g /bin/busybox"], stdin: null, TimeSpan.FromSeconds(120));

        Assert.True(r.ExitCode == 0, r.Describe());
        var lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["0 200000 65536", "0:0"], lines.Select(l => string.Join(' ', l.Split(' ', StringSplitOptions.RemoveEmptyEntries))));
        Assert.Empty(ProcFs.MountsUnder(Path.Combine(Ctrd.Dir, "state")));
        if (idmappedLayers)
        {
            // the layer itself was not chowned: the shift happened in the idmapped mount
            var busybox = Directory.GetFiles(Path.Combine(Ctrd.Dir, "root"), "busybox", SearchOption.AllDirectories);
            Assert.NotEmpty(busybox);
            foreach (var file in busybox)
            {
                Assert.Equal("0\n", (await Command.RunAsync("/usr/bin/stat", ["-c", "%u", file], ct: Ct)).EnsureSuccess().Stdout);
            }
        }
    }
}
