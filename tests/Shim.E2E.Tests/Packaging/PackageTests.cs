using System.Text.RegularExpressions;

namespace Shim.E2E.Tests;

/// <summary>
/// scripts/package.sh run once over the built binary (dist/), its .deb unpacked with dpkg-deb:
/// what a node operator installs.
/// </summary>
public sealed class PackageOutput : IAsyncLifetime
{
    /// <summary>The folder package.sh wrote into.</summary>
    public string Out { get; private set; } = "";

    /// <summary>The .deb unpacked (dpkg-deb -x).</summary>
    public string Root { get; private set; } = "";

    /// <summary>The version in VERSION.</summary>
    public static string Version => File.ReadAllText(Path.Combine(Prereqs.RepoRoot, "VERSION")).Trim();

    public string Deb => Path.Combine(Out, $"runcsharp_{Version}_amd64.deb");

    public string Tarball => Path.Combine(Out, $"runcsharp-{Version}-linux-amd64.tar.gz");

    /// <summary>package.sh's own result: it fails when lintian reports an error.</summary>
    internal CommandResult? Packaged { get; private set; }

    /// <summary>What is missing to run these tests, or null.</summary>
    public static string? Missing()
    {
        if (!File.Exists(Path.Combine(Prereqs.DistDir, "containerd-shim-runcsharp-v2"))) { return "dist/containerd-shim-runcsharp-v2 (run scripts/build.sh)"; }
        foreach (var tool in new[] { "dpkg-deb", "lintian", "objdump", "sha256sum" })
        {
            if (Prereqs.Which(tool) is null) { return $"{tool} (scripts/setup.sh installs it)"; }
        }
        return null;
    }

    public async ValueTask InitializeAsync()
    {
        if (Missing() is not null) { return; }
        Out = Directory.CreateTempSubdirectory("rcs-package-test-").FullName;
        Root = Path.Combine(Out, "root");
        // lintian takes ~20 s here, much more on a loaded host
        Packaged = await Command.RunAsync("bash", [Path.Combine(Prereqs.RepoRoot, "scripts", "package.sh"),
            "--binary", Path.Combine(Prereqs.DistDir, "containerd-shim-runcsharp-v2"), "--out", Out], timeout: TimeSpan.FromMinutes(5));
        if (Packaged.ExitCode == 0)
        {
            (await Command.RunAsync("dpkg-deb", ["-x", Deb, Root])).EnsureSuccess();
        }
    }

    public ValueTask DisposeAsync()
    {
        if (Out.Length > 0) { Directory.Delete(Out, recursive: true); }
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// The .deb and the release tarball of scripts/package.sh hold what they should, lintian finds no
/// error, and the example containerd drop-in of the line under test (RCS_CONTAINERD) gives
/// containerd the runcsharp handler without losing runc's or the main file's CNI settings.
/// </summary>
public sealed class PackageTests(PackageOutput pkg) : IClassFixture<PackageOutput>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private CommandResult Packaged()
    {
        if (PackageOutput.Missing() is { } missing)
        {
            if (Prereqs.IsCi) { throw new InvalidOperationException($"missing {missing} (CI=true: a missing prerequisite fails the run)"); }
            Assert.Skip($"missing {missing}");
        }
        Assert.True(pkg.Packaged is { ExitCode: 0 }, $"scripts/package.sh failed: {pkg.Packaged?.Describe()}");
        return pkg.Packaged!;
    }

    [Fact]
    public async Task The_deb_holds_the_binary_man_page_copyright_changelog_and_examples()
    {
        Packaged();
        var listing = (await Command.RunAsync("dpkg-deb", ["-c", pkg.Deb], ct: Ct)).EnsureSuccess().Stdout;
        string[] want =
        [
            "-rwxr-xr-x root/root .* ./usr/bin/containerd-shim-runcsharp-v2$",
            "-rw-r--r-- root/root .* ./usr/share/man/man8/containerd-shim-runcsharp-v2.8.gz$",
            "-rw-r--r-- root/root .* ./usr/share/doc/runcsharp/copyright$",
            "-rw-r--r-- root/root .* ./usr/share/doc/runcsharp/changelog.gz$",
            "-rw-r--r-- root/root .* ./usr/share/doc/runcsharp/examples/containerd-1.6.toml$",
            "-rw-r--r-- root/root .* ./usr/share/doc/runcsharp/examples/containerd-1.7.toml$",
            "-rw-r--r-- root/root .* ./usr/share/doc/runcsharp/examples/containerd-2.x.toml$",
        ];
        foreach (var w in want)
        {
            Assert.True(Regex.IsMatch(listing, w, RegexOptions.Multiline), $"no line matching {w} in dpkg-deb -c:\n{listing}");
        }
        // nothing under /etc: `apt remove` then leaves no conffile behind
        Assert.DoesNotContain("./etc/", listing, StringComparison.Ordinal);
        var binary = await File.ReadAllBytesAsync(Path.Combine(pkg.Root, "usr/bin/containerd-shim-runcsharp-v2"), Ct);
        Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(Prereqs.DistDir, "containerd-shim-runcsharp-v2"), Ct), binary);
    }

    [Fact]
    public async Task The_package_version_is_VERSION_and_the_binary_prints_it_with_its_commit()
    {
        Packaged();
        var field = (await Command.RunAsync("dpkg-deb", ["-f", pkg.Deb, "Version"], ct: Ct)).EnsureSuccess().Stdout.Trim();
        Assert.Equal(PackageOutput.Version, field);
        var v = (await Command.RunAsync(Path.Combine(pkg.Root, "usr/bin/containerd-shim-runcsharp-v2"), ["-v"], ct: Ct)).EnsureSuccess().Stdout;
        Assert.Contains($"Version: {PackageOutput.Version}\n", v, StringComparison.Ordinal);
        Assert.Matches(new Regex(@"Revision: [0-9a-f]{40}\n"), v);
        var changelog = (await Command.RunAsync("zcat", [Path.Combine(pkg.Root, "usr/share/doc/runcsharp/changelog.gz")], ct: Ct)).EnsureSuccess().Stdout;
        Assert.StartsWith($"runcsharp ({PackageOutput.Version}) ", changelog, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_man_page_covers_the_actions_flags_and_settings()
    {
        Packaged();
        var page = (await Command.RunAsync("zcat", [Path.Combine(pkg.Root, "usr/share/man/man8/containerd-shim-runcsharp-v2.8.gz")], ct: Ct)).EnsureSuccess().Stdout;
        foreach (var word in new[] { "start", "delete", "\\-info", "\\-version", "\\-bundle", "RUNCSHARP_RUNC_TIMEOUT", "RUNCSHARP_MAX_CONNECTIONS",
                                     "RUNCSHARP_MAX_REQUESTS_IN_FLIGHT", "RUNCSHARP_FRAME_TIMEOUT", "SCHED_CORE", $"runcsharp {PackageOutput.Version}" })
        {
            Assert.Contains(word, page, StringComparison.Ordinal);
        }
        Assert.DoesNotContain("@VERSION@", page, StringComparison.Ordinal);
    }

    [Fact]
    public void Lintian_reports_no_error()
    {
        var result = Packaged();
        var report = File.ReadAllText(Path.Combine(pkg.Out, $"runcsharp_{PackageOutput.Version}_amd64.lintian"));
        Assert.DoesNotMatch(new Regex("^E: ", RegexOptions.Multiline), report);
        Assert.Contains("package: ", result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_tarball_is_laid_out_as_containerds_with_bin_at_the_top()
    {
        Packaged();
        var listing = (await Command.RunAsync("tar", ["-tvzf", pkg.Tarball], ct: Ct)).EnsureSuccess().Stdout;
        var rows = listing.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, rows.Length);
        Assert.Matches(new Regex(@"^drwxr-xr-x 0/0 .* bin/$"), rows[0]);
        Assert.Matches(new Regex(@"^-rwxr-xr-x 0/0 .* bin/containerd-shim-runcsharp-v2$"), rows[1]);
    }

    [Fact]
    public async Task Each_file_has_a_sha256sum_file_that_verifies()
    {
        Packaged();
        foreach (var f in new[] { pkg.Deb, pkg.Tarball })
        {
            Assert.True(File.Exists(f + ".sha256sum"), $"no {f}.sha256sum");
            var check = await Command.RunAsync("/bin/sh", ["-c", "cd \"$1\" && sha256sum -c \"$2\"", "sh", pkg.Out, Path.GetFileName(f) + ".sha256sum"], ct: Ct);
            Assert.True(check.ExitCode == 0, check.Describe());
        }
    }

    /// <summary>Main files as they are met: Debian's config.toml (every line's package ships a
    /// version 2 one) and, for 2.x, containerd's own version 3; each gets the imports line.</summary>
    private const string DebianMain = """
        version = 2
        imports = ["@DIR@/conf.d/*.toml"]

        [plugins]
          [plugins."io.containerd.grpc.v1.cri"]
            [plugins."io.containerd.grpc.v1.cri".cni]
              bin_dir = "/usr/lib/cni"
              conf_dir = "/etc/cni/net.d"
          [plugins."io.containerd.internal.v1.opt"]
            path = "/var/lib/containerd/opt"
        """;

    private const string Version3Main = """
        version = 3
        imports = ["@DIR@/conf.d/*.toml"]

        [plugins]
          [plugins.'io.containerd.cri.v1.runtime'.cni]
            bin_dirs = ["/usr/lib/cni"]
            conf_dir = "/etc/cni/net.d"
        """;

    [Fact]
    public async Task The_example_drop_in_of_this_line_adds_the_handler_and_keeps_runc_and_the_CNI_settings()
    {
        Packaged();
        var line = ContainerdLines.Find(ContainerdLines.Selected, out var missing);
        if (line is null)
        {
            if (Prereqs.IsCi) { throw new InvalidOperationException($"missing {missing}"); }
            Assert.Skip($"missing {missing}");
            return;
        }
        var cases = line.Major >= 2
            ? new[] { (Version3Main, "containerd-2.x.toml", 3), (DebianMain, "containerd-1.7.toml", 2) }
            : [(DebianMain, $"containerd-{line.Name}.toml", 2)];
        foreach (var (main, example, version) in cases)
        {
            var dir = Directory.CreateTempSubdirectory("rcs-dropin-").FullName;
            try
            {
                Directory.CreateDirectory(Path.Combine(dir, "conf.d"));
                await File.WriteAllTextAsync(Path.Combine(dir, "config.toml"), main.Replace("@DIR@", dir, StringComparison.Ordinal), Ct);
                File.Copy(Path.Combine(pkg.Root, "usr/share/doc/runcsharp/examples", example), Path.Combine(dir, "conf.d", "runcsharp.toml"));
                var dump = await Command.RunAsync(line.Containerd, ["-c", Path.Combine(dir, "config.toml"), "config", "dump"], ct: Ct);
                Assert.True(dump.ExitCode == 0, dump.Describe());
                var text = dump.Stdout.Replace('\'', '"');
                var what = $"{line} with {example} over a version {version} config.toml";
                Assert.True(Regex.IsMatch(text, @"runtimes\.runcsharp\]\s*(\S.*\n\s*)*?runtime_type = ""io\.containerd\.runcsharp\.v2"""), $"{what}: no runcsharp handler in the dump:\n{text}");
                Assert.True(Regex.IsMatch(text, @"runtimes\.runc\]\s*(\S.*\n\s*)*?runtime_type = ""io\.containerd\.runc\.v2"""), $"{what}: the runc handler is gone:\n{text}");
                Assert.True(text.Contains("\"/usr/lib/cni\"", StringComparison.Ordinal), $"{what}: the main file's CNI folder is gone:\n{text}");
                Assert.DoesNotContain("level=error", dump.Stderr, StringComparison.Ordinal);
            }
            finally
            {
                Directory.Delete(dir, recursive: true);
            }
        }
    }
}
