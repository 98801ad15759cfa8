using Shim.Os.Mounting;
namespace Shim.Os.Tests;

public sealed class OverlayLowerdirsTests
{
    private const string Snapshots = "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots";

    [Fact]
    public void Layers_numbered_alike_share_the_snapshots_directory_not_a_number_prefix()
    {
        Assert.Equal(Snapshots, OverlayLowerdirs.CommonParent([$"{Snapshots}/1/fs", $"{Snapshots}/12/fs", $"{Snapshots}/123/fs"]));
        Assert.Equal(Snapshots, OverlayLowerdirs.CommonParent([$"{Snapshots}/1/fs", $"{Snapshots}/2/fs"]));
    }

    [Fact]
    public void Layers_that_only_share_the_root_have_no_common_parent()
    {
        Assert.Null(OverlayLowerdirs.CommonParent(["/a/fs", "/b/fs"]));
        Assert.Null(OverlayLowerdirs.CommonParent(["relative/x", "other/y"]));
    }

    [Fact]
    public void A_long_lowerdir_list_becomes_paths_relative_to_the_common_parent_at_the_end()
    {
        string[] layers = [.. Enumerable.Range(1, 120).Reverse().Select(n => $"{Snapshots}/{n}/fs")];
        string[] options = ["index=off", "lowerdir=" + string.Join(':', layers), $"upperdir={Snapshots}/121/fs", $"workdir={Snapshots}/121/work"];
        Assert.True(OverlayLowerdirs.TooLong(options, 4096));

        var (dir, compacted) = OverlayLowerdirs.Compact(options);

        Assert.Equal(Snapshots, dir);
        Assert.Equal(
            ["index=off", $"upperdir={Snapshots}/121/fs", $"workdir={Snapshots}/121/work",
             "lowerdir=" + string.Join(':', Enumerable.Range(1, 120).Reverse().Select(n => $"{n}/fs"))],
            compacted);
        Assert.False(OverlayLowerdirs.TooLong(compacted, 4096));
    }

    [Fact]
    public void A_single_lower_or_lowers_without_a_common_parent_stay_as_they_are()
    {
        string[] single = [$"lowerdir={Snapshots}/1/fs"];
        Assert.Equal((null, single), OverlayLowerdirs.Compact(single));
        string[] apart = ["lowerdir=/a/fs:/b/fs"];
        Assert.Equal((null, apart), OverlayLowerdirs.Compact(apart));
        string[] none = ["ro"];
        Assert.Equal((null, none), OverlayLowerdirs.Compact(none));
    }

    [Fact]
    public void A_lower_that_is_the_common_parent_itself_is_not_compacted()
    {
        string[] options = [$"lowerdir={Snapshots}/:{Snapshots}/1/fs"];
        Assert.Equal((null, options), OverlayLowerdirs.Compact(options));
    }

    [Fact]
    public void The_page_limit_counts_option_lengths_less_a_512_byte_margin()
    {
        Assert.False(OverlayLowerdirs.TooLong([new string('a', 3583)], 4096));
        Assert.True(OverlayLowerdirs.TooLong([new string('a', 3000), new string('b', 584)], 4096));
    }
}
