using System.Diagnostics;
using Containerd.Task.V2;
using Shim.Ttrpc;
using Mount = Containerd.Types.Mount;

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

        var took = Stopwatch.StartNew();
        var r = await CtrAsync("run", "--rm", "--fifo-dir", Ctrd.FifoDir, "--runtime", Runtime, OciImage.LayeredName, "layers1",
            "sh", "-c", "ls /layers | wc -l; cat /etc/passwd; echo written > /tmp/f; cat /tmp/f");
        Log($"ctr run --rm of the {1 + OciImage.ExtraLayers}-layer image: {took.ElapsedMilliseconds} ms");

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

        var took = Stopwatch.StartNew();
        var r = await CtrAsync(["run", "--rm", "--fifo-dir", Ctrd.FifoDir, "--runtime", Runtime,
            "--uidmap", "0:200000:65536", "--gidmap", "0:200000:65536", .. remap, OciImage.Name, "userns1",
            "sh", "-c", "cat /proc/self/uid_map; stat -c %u:%g /bin/busybox"], stdin: null, TimeSpan.FromSeconds(120));
        Log($"ctr run --rm with --uidmap/--gidmap {string.Join(' ', remap)}: {took.ElapsedMilliseconds} ms");

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

    [Fact]
    public async Task A_rootfs_mount_that_fails_answers_which_mount_and_option_and_leaves_nothing_mounted()
    {
        OursOnly("the Go shim hands uidmap without a value to the kernel and answers Unknown");
        (await CtrAsync(RunArgs("m1", detach: true, "sleep", "300"))).EnsureSuccess();
        await using var shim = await ShimClient.ConnectAsync(Ctrd, Ns, "m1", Ct);
        string bundle = Path.Combine(Ctrd.Dir, "bundles", "m2");
        string rootfs = Path.Combine(bundle, "rootfs");
        Directory.CreateDirectory(bundle);
        File.Copy(Path.Combine(Ctrd.BundleDir(Ns, "m1"), "config.json"), Path.Combine(bundle, "config.json"));
        var tmpfs = new Mount { Type = "tmpfs", Source = "tmpfs", Options = { "size=1m" } };

        var badOption = await CreateAsync(shim, bundle, tmpfs, new Mount { Type = "bind", Source = RootfsDir, Options = { "rbind", "uidmap", "gidmap=0:1:1" } });
        Assert.Equal(StatusCode.InvalidArgument, badOption.Code);
        Assert.Contains($"mount 2 of 2 (bind {RootfsDir} on /): option \"uidmap\" needs a value", badOption.Message, StringComparison.Ordinal);
        Assert.Empty(ProcFs.MountsUnder(rootfs));

        var outside = await CreateAsync(shim, bundle, tmpfs, new Mount { Type = "tmpfs", Source = "tmpfs", Target = "../../..", Options = { "size=1m" } });
        Assert.Equal(StatusCode.InvalidArgument, outside.Code);
        Assert.Contains("mount 2 of 2 (tmpfs tmpfs on /../../..): target \"../../..\" leads out of the rootfs", outside.Message, StringComparison.Ordinal);
        Assert.Empty(ProcFs.MountsUnder(rootfs));

        string missing = Path.Combine(Ctrd.Dir, "no-such-dir");
        var refused = await CreateAsync(shim, bundle, tmpfs, new Mount { Type = "bind", Source = missing, Options = { "rbind", "ro" } });
        Assert.Equal(StatusCode.Unknown, refused.Code);
        Assert.Contains($"mount 2 of 2 (bind {missing} on /): mount(2): No such file or directory", refused.Message, StringComparison.Ordinal);
        Assert.Empty(ProcFs.MountsUnder(rootfs));

        var state = await shim.StatusOfAsync(shim.TaskApi, "State", new StateRequest { Id = "m2" }, StateResponse.Parser, Ct);
        Assert.Equal(StatusCode.NotFound, state.Code);
        Assert.Contains("RUNNING", (await CtrAsync("task", "ls")).EnsureSuccess().Stdout, StringComparison.Ordinal);
    }

    private static Task<(StatusCode Code, string Message)> CreateAsync(ShimClient shim, string bundle, params Mount[] rootfs)
    {
        var request = new CreateTaskRequest { Id = "m2", Bundle = bundle };
        request.Rootfs.AddRange(rootfs);
        return shim.StatusOfAsync(shim.TaskApi, "Create", request, CreateTaskResponse.Parser, Ct);
    }
}
