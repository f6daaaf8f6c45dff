package dev.ema4j.study;

import java.util.List;
import java.util.Objects;

/**
 * Everything that determines one training run of a study (a "cell"): data, model, optimizer, EMAs, evaluation and
 * seed. Runs are independent: each can execute alone, in its own process or on its own machine.
 *
 * @param group the family of runs this belongs to ({@link StudyPlan#spec} lists them)
 * @param width width of {@code SmallCnn}
 * @param trainSamples samples drawn from the 60k training images before the 80/20 split; 0 for all
 * @param noise symmetric label-noise rate applied to the drawn samples (training and validation)
 * @param classes the classes trained on, relabelled 0..k−1 (transfer pretraining); empty for all ten
 * @param testSamples test images evaluated; 0 for all 10k
 * @param epochs training epochs
 * @param batch batch size
 * @param lr the learning-rate schedule: {@code cosine} (one epoch of linear warm-up), {@code constant} or
 *     {@code step} (÷5 at 30%, 60% and 80% of the epochs)
 * @param baseLr the peak learning rate
 * @param weightDecay SGD's weight decay (Nesterov momentum 0.9)
 * @param decays the EMAs' decays per optimizer step, bias-corrected; an EMA updated every {@code every} steps applies
 *     α^every per update (a window of about 1/(1 − α) steps whatever {@code every} is)
 * @param every optimizer steps per EMA update
 * @param averagedStats also evaluate the EMAs with EMAN-averaged BatchNorm statistics
 * @param recomputeBatches training batches of the BatchNorm recompute pass
 * @param memorizationSamples training samples on which memorization of noisy labels is measured (0: none)
 * @param evalEvery evaluate after every {@code evalEvery}-th epoch (and the last)
 * @param probe after training, fit linear probes on the other five classes (transfer)
 * @param model {@code smallCnn}, or {@code smallCnnNoBatchNorm} (the same network without BatchNorm)
 * @param swaFrom when above 0, a uniform average of the live weights at the ends of the epochs after this fraction
 *     of the run (SWA) is evaluated at the end, statistics recomputed, as variant {@code swa/recomputed}
 * @param copyBack when ≥ 0, the EMA of this index is copied into the live weights at the end of every epoch (the
 *     paper's ablation); −1 for none
 * @param snapshotEvery when above 0, two power-function EMAs (σ_rel 0.05 and 0.10) are tracked beside the decays
 *     and saved every {@code snapshotEvery} optimizer steps (a multiple of {@code every}); after training the run
 *     rebuilds a sweep of other widths from them ({@link PostHocSweep}); 0 for none
 * @param seed initialization, shuffling and augmentation (the data subset, noise and split use {@link #DATA_SEED})
 */
public record RunSpec(String group, int width, int trainSamples, double noise, List<Integer> classes, int testSamples,
                      int epochs, int batch, String lr, double baseLr, double weightDecay, List<Double> decays,
                      int every, boolean averagedStats, int recomputeBatches, int memorizationSamples, int evalEvery,
                      boolean probe, String model, double swaFrom, int copyBack, int snapshotEvery,
                      long seed) {

    /** Seed of the data subset, label noise and split, shared by all seeds of a study so they see the same data. */
    public static final long DATA_SEED = 1234;

    public RunSpec {
        Objects.requireNonNull(group, "group");
        classes = List.copyOf(classes);
        decays = List.copyOf(decays);
        if (!List.of("cosine", "constant", "step").contains(lr)) {
            throw new IllegalArgumentException("lr is \"" + lr + "\"; must be cosine, constant or step");
        }
        if (!List.of("smallCnn", "smallCnnNoBatchNorm").contains(model)) {
            throw new IllegalArgumentException("model is \"" + model + "\"; must be smallCnn or smallCnnNoBatchNorm");
        }
        if (swaFrom < 0 || swaFrom >= 1 || copyBack < -1 || copyBack >= decays.size()) {
            throw new IllegalArgumentException("swaFrom is " + swaFrom + " (must be in [0, 1)), copyBack " + copyBack
                    + " (must be −1 or an EMA index below " + decays.size() + ")");
        }
        if (snapshotEvery < 0 || snapshotEvery % every != 0) {
            throw new IllegalArgumentException("snapshotEvery is " + snapshotEvery + "; must be 0 or a positive "
                    + "multiple of every = " + every);
        }
    }

    /** The cell's directory name: group and seed. */
    public String key() {
        return group + "-seed" + seed;
    }
}
