"""The lab report of ``analyze.py``: every sentence is filled in from the study's measurements."""

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import markdown

from gan.latent import BLANK_LEVEL, BLANK_SHARE, MIN_CORRELATED

# "Change" is measured against the typical difference between two images of the base row (its diversity).
VISIBLE = 0.10  # a change of at least 10% of that difference is visible
LARGE = 0.50  # at least half of it: large, the garment itself changes (unless the classifier sees no class change)
COLLAPSED = 0.25  # a row keeping under 25% of the base row's diversity has collapsed to nearly one image
SAME_DIVERSITY = 0.90  # a row keeping 90% of it up to MORE_DIVERSITY stays about as diverse; below, more alike
MORE_DIVERSITY = 1.10  # a row keeping at least 110% of it has grown more diverse
DIFFERENT = 2.0  # the numbers' changes differ when the largest (as printed) is at least twice the smallest
# the thresholds that the words compare a change, or a row's diversity, with (as measured, never as printed)
CHANGE_THRESHOLDS = (VISIBLE, LARGE)
DIVERSITY_THRESHOLDS = (COLLAPSED, SAME_DIVERSITY, MORE_DIVERSITY)

TEXT = {
    "en": {
        "title": "# Latent numbers of the Fashion-MNIST GAN: what each one does",
        "setup": (
            "Checkpoint `{checkpoint}` ({model}, trained {epochs} whole epoch{plural}, {batches} batches,"
            " {latent_dim} latent numbers). Custom noise: {num_images} vectors ({noise}). {studied}"
            " {eval_mode} Pixel distances are mean absolute differences on the [0, 1] grey scale. A change counts as"
            " *visible* from {visible:.0%} of the base row's diversity (the typical difference between two of its"
            " images, {base_diversity:.3f}), *large* from {large:.0%}.{different} A row keeping {same:.0%} to under"
            " {more:.0%} of the base row's diversity stays about as diverse, from {more:.0%} its images grow more"
            " different from each other, under {same:.0%} more alike, and under {collapsed:.0%} the row has"
            " *collapsed* to nearly one image. An image counts as *nearly blank* (no garment, one grey level) when"
            " under {blank_share:.0%} of its pixels differ from its median grey level by more than {blank_level:g}"
            " (every real Fashion-MNIST image has more); a nearly blank image is no class change. The study took"
            " {seconds:.1f} s on {device}{classifier}."
        ),
        "classifier_time": " (plus {seconds:.1f} s training the classifier once)",
        "different": (
            " The chosen numbers' changes count as *different* from number to number when the largest is at least"
            " {times:g} times the smallest."
        ),
        "eval_bn": (
            "The generator runs in eval mode: its BatchNorm layers use their running statistics from training, so"
            " each image depends on its own noise vector only."
        ),
        "eval_no_bn": "The generator runs in eval mode (it has no BatchNorm layers: train mode gives the same images).",
        "h_models": "## Model structure",
        "h_loss": "## Training loss",
        "no_loss": "The checkpoint holds no loss history, so there is no loss curve.",
        "h_base": "## The custom noise: {num_images} images",
        "h_grid": "## Changing one number: the {rows}x{num_images} images",
        "grid_intro": (
            "Each figure sets one number of every noise vector to one value (row: which number, column: which noise"
            " vector); `latent_grid.png` shows all rows under the base row."
        ),
        "h_table": "## Measurements",
        "table_head": (
            "| value | number | change | change / base diversity | row diversity / base | "
            "\\|v\\|·‖W[:, i]‖ / typical ‖Wz‖ |"
        ),
        "blank_head": " nearly blank images |",
        "class_head": " images that changed class |",
        "value_classes": " By the project's classifier, {changed} of the {total} images are now of another class.",
        "value_classes_one": " By the project's classifier, {changed} of the {total} images is now of another class.",
        "value_classes_rest": (
            " By the project's classifier, {changed} of the {rest} images that are not nearly blank are now of another"
            " class."
        ),
        "value_classes_rest_one": (
            " By the project's classifier, {changed} of the {rest} images that are not nearly blank is now of another"
            " class."
        ),
        "value_classes_none": " No image is left to class: every one is nearly blank.",
        "h_values": "## What each value does",
        "studied": "Studied numbers {dims}, each set to {values}.",
        "studied_one": "Studied number {dims}, set to {values}.",
        "range": "{low} to {high}",
        "span": " (from {low} for z[{dim_min}] to {high} for z[{dim_max}])",
        "value": (
            "**Value {value:g}.** Setting one number to {value:g} changes the images by {change_mean:.3f} on average"
            "{span}, {rel_mean} of the base row's diversity: {effect}. The number's weighted size"
            " \\|v\\|·‖W[:, i]‖ is {weights} times a typical ‖W z‖ ({typical:.2f}), so {weight}. {rows_keep}"
            " {diversity} of the base row's diversity: {rows}. Along random unit directions the same value changes"
            " the images by {rand_mean:.3f} (5th to 95th percentile {rand_range}); {versus}."
        ),
        "rows_keep": "The rows keep",
        "rows_keep_one": "The row keeps",
        "effect_none": "hardly visible",
        "effect_visible": "clearly visible",
        "effect_visible_differ": "clearly visible, and different from number to number",
        "effect_visible_differ_random": (
            "clearly visible, and different from number to number, though within the spread of random directions"
        ),
        "effect_visible_alike": "clearly visible, and about the same for every number",
        "effect_visible_alike_random": "clearly visible, and about the same for every number, as for random directions",
        "effect_large": "large: the garments themselves change",
        "effect_large_same_class": "large, yet every image keeps its class",
        "effect_large_same_class_rest": "large, yet every image that is not nearly blank keeps its class",
        "effect_mixed": "visible for some numbers ({visible}) and not for others",
        "effect_blank": "the images turn nearly blank: no garment is left",
        "effect_some_blank": "{effect}, and {blank} of the {total} images turn nearly blank ({dims})",
        "weight_small": "the one number is small beside the other {others} together",
        "weight_comparable": "the one number is comparable to the other {others} together",
        "weight_dominant": "the one number outweighs the other {others} together",
        "rows_more": "{images} become more different from each other than before",
        "rows_kept": "{images} stay about as different from each other as before",
        "rows_less": "{images} become more alike",
        "rows_collapsed": "{images} collapse to nearly the same image",
        "rows_collapsed_all": "each row collapses to nearly the same image, whatever the other numbers are",
        "rows_collapsed_all_one": "the row collapses to nearly the same image, whatever the other numbers are",
        "rows_images": "the {num_images} images",
        "rows_they": "they",
        "rows_where": "in the rows of {dims} {part}",
        "rows_where_one": "in the row of {dims} {part}",
        "rows_sep": "; ",
        "versus_inside": "the chosen numbers behave like any random direction",
        "versus_inside_one": "the chosen number behaves like any random direction",
        "versus_above": "the chosen numbers change the images more than most random directions",
        "versus_above_one": "the chosen number changes the images more than most random directions",
        "versus_below": "the chosen numbers change the images less than most random directions",
        "versus_below_one": "the chosen number changes the images less than most random directions",
        "versus_mixed": "some chosen numbers change the images more than most random directions, some less",
        "versus_some_above": (
            "{dims} change the images more than most random directions, the others like any random direction"
        ),
        "versus_some_above_one": (
            "{dims} changes the images more than most random directions, the others like any random direction"
        ),
        "versus_some_below": (
            "{dims} change the images less than most random directions, the others like any random direction"
        ),
        "versus_some_below_one": (
            "{dims} changes the images less than most random directions, the others like any random direction"
        ),
        "h_numbers": "## What each number does",
        "number": (
            "**z[{dim}].** Its weight column ‖W[:, {dim}]‖ = {norm:.3f} is the {norm_rank} largest of {latent_dim};"
            " a step of +1 changes the images by {sensitivity:.4f}, the {sens_rank} largest sensitivity of"
            " {latent_dim}. In the traversal, measured from the images with z[{dim}] = 0, the change becomes visible"
            " {onset}. At the studied values the change from the base images reaches"
            " {at_values} of the base diversity; {collapse}{blank}."
        ),
        "blank_at": "; its images turn nearly blank at {values}",
        "onset_at": "once \\|z[{dim}]\\| reaches {value:g}",
        "onset_never": "nowhere within ±{value:g}",
        "onset_never_at": "at none of the measured values, z[{dim}] = {values}",
        "onset_only": "only at z[{dim}] = {values}",
        "onset_measured": "at z[{dim}] = {values}",
        "collapse_at": "the row collapses at {values}",
        "collapse_never": "the row never collapses at the studied values",
        "numbers_table_head": (
            "| number | ‖W[:, i]‖ (rank) | sensitivity to +1 (rank) | visible from (change from z[i] = 0) |"
            "\n|---|---|---|---|"
        ),
        "h_all": "## All {latent_dim} numbers, and the null baseline",
        "h_all_one": "## The model's only number, and the null baseline",
        "all": (
            "Over all {latent_dim} numbers the sensitivity (image change for a step of +1) is {sensitivities}"
            " (mean {s_mean:.4f}). {correlation} Along {num_random} random unit directions the same step gives"
            " {random} (mean {r_mean:.4f}), and {inside:.0%} of the numbers fall inside the random"
            " directions' 5th-95th percentile range. {special}"
        ),
        "all_one": (
            "The model's only number has a sensitivity (image change for a step of +1) of {sensitivities}."
            " {correlation} Along {num_random} random unit directions the same step gives {random} (mean"
            " {r_mean:.4f}), and the number falls {falls} the random directions' 5th-95th percentile range. {special}"
        ),
        "falls_inside": "inside",
        "falls_outside": "outside",
        "correlation": "Its rank correlation with the weight-column size ‖W[:, i]‖ is ρ = {rho:.2f}: {rho_text}.",
        "correlation_none": (
            "Its rank correlation with the weight-column size ‖W[:, i]‖ cannot be measured with fewer than {least}"
            " numbers."
        ),
        "rho_strong": "the first layer's weights largely explain why some numbers matter more than others",
        "rho_moderate": "the first layer's weights explain part of why numbers differ; the later layers do the rest",
        "rho_weak": "the first layer's weights say little about which numbers matter; the later layers decide",
        "rho_negative": "the numbers with larger weight columns change the images less; the later layers decide",
        "special_no": (
            "So a single latent number is just one direction among many: the Gaussian latent is rotation invariant,"
            " nothing marks the coordinate axes out, and the numbers differ only as much as random directions do."
        ),
        "special_yes": (
            "So the coordinate axes are not like random directions: the generator has learnt to treat single"
            " numbers differently from mixtures of them."
        ),
        "h_sefa": "## Principal directions of the first layer (SeFa)",
        "sefa": (
            "The top {count} singular directions of the first layer's weight carry {energy:.0%} of its energy (an"
            " even spread would give {even:.0%}). A step of +1 along the first of them changes the images by"
            " {sefa_top:.4f}, {against}. On average"
            " {share:.0%} of a number's weight column lies in these {count} directions ({chosen}){explained}."
        ),
        "sefa_one": (
            "The top singular direction of the first layer's weight carries {energy:.0%} of its energy (an even"
            " spread would give {even:.0%}). A step of +1 along it changes the images by {sefa_top:.4f},"
            " {against}. On average {share:.0%} of a number's weight"
            " column lies in this direction ({chosen}){explained}."
        ),
        "sefa_against": "{times:.1f} times the most sensitive single number ({number_top:.4f})",
        "sefa_against_none": "while a step of +1 in any single number changes them by 0.0000",
        "sefa_r2": ", and they explain R² = {r2:.2f} of the differences in column size between the numbers",
        "sefa_r2_one": ", and it explains R² = {r2:.2f} of the differences in column size between the numbers",
        "sefa_r2_none": (
            "; the R² of the differences in column size between the numbers cannot be measured with fewer than"
            " {least} numbers"
        ),
        "h_summary": "## Summary",
        "summary_value": "- **{value:g}**: {effect}; {rows}.",
        "figure_traversal": "Each chosen number swept over {values} (image 0):",
        "figure_traversal_one": "The chosen number swept over {values} (image 0):",
        "figure_sefa": "The top {count} SeFa directions swept the same way:",
        "figure_sefa_one": "The top SeFa direction swept the same way:",
    },
    "zh": {
        "title": "# Fashion-MNIST GAN 的隐变量:每个随机数的作用",
        "setup": (
            "检查点 `{checkpoint}`({model},训练 {epochs} 个完整轮次、{batches} 批,{latent_dim} 个随机数)。"
            "自定义噪声:{num_images} 个向量"
            "({noise})。{studied}{eval_mode}像素距离为 [0, 1] 灰度上的平均绝对差。"
            "变化达到基准行多样性(其中两张图的典型差异,{base_diversity:.3f})的 {visible:.0%} 记为*可见*,"
            "达到 {large:.0%} 记为*很大*。{different}"
            "保留基准行多样性 {same:.0%} 到不足 {more:.0%} 的行差异与原来大致相同,"
            "达到 {more:.0%} 则图像之间差异更大,低于 {same:.0%} 则更相似,"
            "低于 {collapsed:.0%} 记为*坍缩*为几乎同一张图。一张图中与其灰度中位数相差超过 {blank_level:g} 的像素"
            "不足 {blank_share:.0%} 时记为*几乎空白*(没有衣物,只有一种灰度;真实的 Fashion-MNIST 图像都更多),"
            "几乎空白的图不算类别改变。本次分析在 {device} 上用时 {seconds:.1f} 秒{classifier}。"
        ),
        "classifier_time": "(另有一次性训练分类器的 {seconds:.1f} 秒)",
        "different": "所选随机数中最大的变化至少是最小的 {times:g} 倍时,记为各随机数的变化*不同*。",
        "eval_bn": "生成器运行在 eval 模式:BatchNorm 层使用训练时的滑动统计量,因此每张图只取决于它自己的噪声向量。",
        "eval_no_bn": "生成器运行在 eval 模式(它没有 BatchNorm 层,train 模式生成的图相同)。",
        "h_models": "## 模型结构",
        "h_loss": "## 训练损失",
        "no_loss": "检查点中没有损失记录,因此没有损失曲线。",
        "h_base": "## 自定义噪声生成的 {num_images} 张图",
        "h_grid": "## 调整单个随机数:{rows}x{num_images} 张图",
        "grid_intro": "每幅图把每个噪声向量的一个随机数设为同一个值(行:哪个随机数,列:哪个噪声向量);"
        "`latent_grid.png` 在基准行下方给出全部各行。",
        "h_table": "## 测量结果",
        "table_head": "| 取值 | 随机数 | 变化 | 变化 / 基准多样性 | 行多样性 / 基准 | \\|v\\|·‖W[:, i]‖ / 典型 ‖Wz‖ |",
        "blank_head": " 几乎空白的图像数 |",
        "class_head": " 类别改变的图像数 |",
        "value_classes": "按项目的分类器,{total} 张图中有 {changed} 张变成了其他类别。",
        "value_classes_rest": "按项目的分类器,在 {rest} 张不是几乎空白的图中,有 {changed} 张变成了其他类别。",
        "value_classes_none": "每张图都几乎空白,没有图可以分类。",
        "h_values": "## 各取值的效果",
        "studied": "研究的随机数为 {dims},每个分别设为 {values}。",
        "studied_one": "研究的随机数为 {dims},设为 {values}。",
        "range": "{low} 到 {high}",
        "span": "(从 z[{dim_min}] 的 {low} 到 z[{dim_max}] 的 {high})",
        "value": (
            "**取值 {value:g}。** 把一个随机数设为 {value:g},图像平均变化 {change_mean:.3f}{span},"
            "为基准行多样性的 {rel_mean}:{effect}。"
            "该随机数加权后的大小 \\|v\\|·‖W[:, i]‖ 是典型 ‖W z‖({typical:.2f})的 {weights} 倍,"
            "因此{weight}。{rows_keep}基准行多样性的 {diversity}:{rows}。沿随机单位方向做同样的"
            "调整,图像变化 {rand_mean:.3f}(5% 到 95% 分位 {rand_range});{versus}。"
        ),
        "rows_keep": "各行保留了",
        "rows_keep_one": "该行保留了",
        "effect_none": "肉眼几乎看不出变化",
        "effect_visible": "变化明显",
        "effect_visible_differ": "变化明显,且各随机数的变化不同",
        "effect_visible_differ_random": "变化明显,且各随机数的变化不同,但没有超出随机方向之间的差异",
        "effect_visible_alike": "变化明显,且各随机数的变化大致相同",
        "effect_visible_alike_random": "变化明显,且各随机数的变化大致相同,与随机方向一样",
        "effect_large": "变化很大:衣物本身变了",
        "effect_large_same_class": "变化很大,但每张图的类别都没有变",
        "effect_large_same_class_rest": "变化很大,但每张不是几乎空白的图的类别都没有变",
        "effect_mixed": "部分随机数({visible})的变化可见,其余不可见",
        "effect_blank": "图像几乎变成空白:不再有衣物",
        "effect_some_blank": "{effect},且 {total} 张图中有 {blank} 张几乎变成空白({dims})",
        "weight_small": "这一个随机数相对其余 {others} 个随机数的总和很小",
        "weight_comparable": "这一个随机数与其余 {others} 个随机数的总和相当",
        "weight_dominant": "这一个随机数压过了其余 {others} 个随机数的总和",
        "rows_more": "{images}之间的差异比原来更大",
        "rows_kept": "{images}之间的差异与原来大致相同",
        "rows_less": "{images}变得更相似",
        "rows_collapsed": "{images}几乎坍缩为同一张图",
        "rows_collapsed_all": "每一行几乎坍缩为同一张图,与其他随机数无关",
        "rows_collapsed_all_one": "该行几乎坍缩为同一张图,与其他随机数无关",
        "rows_images": "{num_images} 张图",
        "rows_they": "它们",
        "rows_where": "在 {dims} 所在的行中,{part}",
        "rows_sep": ";",
        "versus_inside": "所选随机数与任意随机方向表现相同",
        "versus_above": "所选随机数引起的变化大于大多数随机方向",
        "versus_below": "所选随机数引起的变化小于大多数随机方向",
        "versus_some_above": "{dims} 引起的变化大于大多数随机方向,其余与任意随机方向表现相同",
        "versus_some_below": "{dims} 引起的变化小于大多数随机方向,其余与任意随机方向表现相同",
        "versus_mixed": "部分所选随机数引起的变化大于大多数随机方向,部分小于",
        "h_numbers": "## 各随机数的效果",
        "number": (
            "**z[{dim}]。** 它的权重列 ‖W[:, {dim}]‖ = {norm:.3f},在 {latent_dim} 个中排第 {norm_rank};+1 的步长使"
            "图像变化 {sensitivity:.4f},敏感度在 {latent_dim} 个中排第 {sens_rank}。"
            "在遍历图中,相对 z[{dim}] = 0 时的图像,变化{onset}变得可见。"
            "在所研究的取值下,相对基准图像的变化达到基准多样性的 {at_values};{collapse}{blank}。"
        ),
        "blank_at": ";取值 {values} 时它的图像几乎变成空白",
        "onset_at": "在 \\|z[{dim}]\\| 达到 {value:g} 时",
        "onset_never": "在 ±{value:g} 范围内都没有",
        "onset_never_at": "在所测的 z[{dim}] = {values} 处都没有",
        "onset_only": "仅在 z[{dim}] = {values} 时",
        "onset_measured": "在 z[{dim}] = {values} 时",
        "collapse_at": "该行在取值 {values} 时坍缩",
        "collapse_never": "该行在所研究的取值下没有坍缩",
        "numbers_table_head": (
            "| 随机数 | ‖W[:, i]‖(排名) | +1 的敏感度(排名) | 从何时可见(相对 z[i] = 0 的变化) |\n|---|---|---|---|"
        ),
        "h_all": "## 全部 {latent_dim} 个随机数与零假设基线",
        "h_all_one": "## 模型唯一的随机数与零假设基线",
        "all": (
            "在全部 {latent_dim} 个随机数上,敏感度(+1 步长引起的图像变化)为 {sensitivities}(平均"
            " {s_mean:.4f})。{correlation}沿 {num_random} 个随机"
            "单位方向做同样的步长,得到 {random}(平均 {r_mean:.4f}),有 {inside:.0%} 的随机数落在随机"
            "方向的 5%–95% 分位范围内。{special}"
        ),
        "all_one": (
            "模型唯一的随机数的敏感度(+1 步长引起的图像变化)为 {sensitivities}。{correlation}沿 {num_random} 个随机"
            "单位方向做同样的步长,得到 {random}(平均 {r_mean:.4f}),该随机数落在随机方向的 5%–95% 分位范围{falls}。"
            "{special}"
        ),
        "falls_inside": "内",
        "falls_outside": "外",
        "correlation": "它与权重列大小 ‖W[:, i]‖ 的秩相关系数 ρ = {rho:.2f}:{rho_text}。",
        "correlation_none": "随机数少于 {least} 个,无法测量它与权重列大小 ‖W[:, i]‖ 的秩相关系数。",
        "rho_strong": "第一层的权重在很大程度上解释了为什么有些随机数更重要",
        "rho_moderate": "第一层的权重解释了随机数之间差异的一部分,其余由后面的层决定",
        "rho_weak": "第一层的权重几乎不能说明哪些随机数更重要,由后面的层决定",
        "rho_negative": "权重列越大的随机数反而使图像变化越小,由后面的层决定",
        "special_no": (
            "因此单个随机数只是众多方向中的一个:高斯隐变量是旋转不变的,坐标轴并无特殊之处,各随机数之间的差异"
            "与随机方向之间的差异一样。"
        ),
        "special_yes": "因此坐标轴与随机方向不同:生成器学会了区别对待单个随机数和它们的组合。",
        "h_sefa": "## 第一层的主方向(SeFa)",
        "sefa": (
            "第一层权重的前 {count} 个奇异方向占其能量的 {energy:.0%}(均匀分布时为 {even:.0%})。沿第一个方向走 +1"
            " 使图像变化 {sefa_top:.4f},{against}。平均而言,一个随机数"
            "的权重列有 {share:.0%} 落在这 {count} 个方向上({chosen}){explained}。"
        ),
        "sefa_one": (
            "第一层权重的第一个奇异方向占其能量的 {energy:.0%}(均匀分布时为 {even:.0%})。沿这个方向走 +1"
            " 使图像变化 {sefa_top:.4f},{against}。平均而言,一个随机数"
            "的权重列有 {share:.0%} 落在这个方向上({chosen}){explained}。"
        ),
        "sefa_against": "是最敏感的单个随机数({number_top:.4f})的 {times:.1f} 倍",
        "sefa_against_none": "而任何单个随机数走 +1 都使图像变化 0.0000",
        "sefa_r2": ",它们解释了各随机数权重列大小差异的 R² = {r2:.2f}",
        "sefa_r2_one": ",它解释了各随机数权重列大小差异的 R² = {r2:.2f}",
        "sefa_r2_none": ";随机数少于 {least} 个,无法测量各随机数权重列大小差异的 R²",
        "h_summary": "## 总结",
        "summary_value": "- **{value:g}**:{effect};{rows}。",
        "figure_traversal": "每个所选随机数取遍 {values}(第 0 张图):",
        "figure_traversal_one": "所选随机数取遍 {values}(第 0 张图):",
        "figure_sefa": "前 {count} 个 SeFa 方向,同样取遍:",
        "figure_sefa_one": "第一个 SeFa 方向,同样取遍:",
    },
}


def _ordinal(rank: int, lang: str) -> str:
    if lang == "zh":
        return str(rank)
    suffix = "th" if 10 <= rank % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(rank % 10, "th")
    return f"{rank}{suffix}"


def _percent(ratio: float, thresholds: tuple[float, ...]) -> str:
    """``ratio`` in whole percent, or with the decimals it takes to lie on the same side of each of ``thresholds`` as
    measured: the words compare the measured ratio, so 9.6% is not visible and is not printed 10%."""
    for decimals in range(4):
        shown = f"{ratio:.{decimals}%}"
        if all((float(shown[:-1]) >= round(limit * 100, 9)) == (ratio >= limit) for limit in thresholds):
            break
    return shown


def _collapsed(diversity_ratio: float) -> bool:
    """Whether a row keeping ``diversity_ratio`` of the base row's diversity has collapsed."""
    return diversity_ratio < COLLAPSED


def _say(text: dict[str, str], key: str, count: int) -> str:
    """``text[key]``, or its singular ``key_one`` where the language has one, for ``count`` things (numbers, images)."""
    return text.get(f"{key}_one", text[key]) if count == 1 else text[key]


def _range(
    values: list[float], spec: str | Callable[[float], str], template: str, alike: str | None = None, **names: Any
) -> str:
    """The lowest to the highest of ``values``, printed with ``spec`` (a format or a function) by ``template``; when
    both ends print alike (one number, or numbers that round alike) ``alike``, by default that one value."""
    low, high = (spec(value) if callable(spec) else format(value, spec) for value in (min(values), max(values)))
    if low == high:
        return low if alike is None else alike
    return template.format(low=low, high=high, **names)


def _outside(changes: list[float], dims: list[int], baseline: dict[str, float]) -> tuple[list[int], list[int]]:
    """The ``dims`` whose ``changes`` lie above, and those below, the random directions' 5th to 95th percentile, as
    printed (3 decimals)."""
    low, high = round(baseline["change_p5"], 3), round(baseline["change_p95"], 3)
    printed = [(dim, round(change, 3)) for dim, change in zip(dims, changes, strict=True)]
    return [dim for dim, change in printed if change > high], [dim for dim, change in printed if change < low]


def _effect(
    changes: list[float],
    relative_changes: list[float],
    dims: list[int],
    class_changes: int | None,
    baseline: dict[str, float],
    text: dict[str, str],
    some_blank: bool = False,
) -> str:
    """How visible the change is; a large one changes the garments unless the classifier (if run) saw none of the
    images change (but for the nearly blank ones, with ``some_blank``);
    visible changes of several numbers differ from number to number when the largest is ``DIFFERENT`` times the
    smallest, as printed, and are like random directions' when all lie in their 5th to 95th percentile."""
    visible = [dim for dim, rel in zip(dims, relative_changes, strict=True) if rel >= VISIBLE]
    if not visible:
        return text["effect_none"]
    if len(visible) < len(dims):
        return text["effect_mixed"].format(visible=", ".join(f"z[{dim}]" for dim in visible))
    if min(relative_changes) >= LARGE:
        if class_changes == 0:
            return text["effect_large_same_class_rest" if some_blank else "effect_large_same_class"]
        return text["effect_large"]
    if len(dims) == 1:
        return text["effect_visible"]
    differ = round(max(changes) * 1000) >= DIFFERENT * round(min(changes) * 1000)  # in printed thousandths
    random = "_random" if _outside(changes, dims, baseline) == ([], []) else ""
    return text[f"effect_visible_{'differ' if differ else 'alike'}{random}"]


def _diversity_state(ratio: float) -> str:
    """Whether a row keeping ``ratio`` of the base row's diversity grew ``more`` diverse, ``kept`` it, became ``less``
    diverse or ``collapsed``."""
    if _collapsed(ratio):
        return "collapsed"
    if ratio >= MORE_DIVERSITY:
        return "more"
    return "kept" if ratio >= SAME_DIVERSITY else "less"


def _rows(diversity_ratios: list[float], dims: list[int], num_images: int, text: dict[str, str]) -> str:
    """What the rows' diversity says: one sentence when every row fares alike, else one clause per kind of row."""
    states = [_diversity_state(ratio) for ratio in diversity_ratios]
    images = text["rows_images"].format(num_images=num_images)
    if len(set(states)) == 1:
        if states[0] == "collapsed":
            return _say(text, "rows_collapsed_all", len(dims))
        return text[f"rows_{states[0]}"].format(images=images)
    clauses = []
    for state in ("more", "kept", "less", "collapsed"):
        group = [f"z[{dim}]" for dim, row_state in zip(dims, states, strict=True) if row_state == state]
        if group:
            part = text[f"rows_{state}"].format(images=text["rows_they"] if clauses else images)
            clauses.append(_say(text, "rows_where", len(group)).format(dims=", ".join(group), part=part))
    return text["rows_sep"].join(clauses)


def _weight(ratios: list[float], latent_dim: int, text: dict[str, str]) -> str:
    low, high = round(min(ratios), 2), round(max(ratios), 2)  # as printed
    key = "weight_dominant" if low > 1 else "weight_small" if high < 0.3 else "weight_comparable"
    return text[key].format(others=latent_dim - 1)


def _versus(changes: list[float], dims: list[int], baseline: dict[str, float], text: dict[str, str]) -> str:
    """How the changes of ``dims`` compare with the random directions' 5th to 95th percentile, as printed (3
    decimals); a minority outside it is named."""
    above, below = _outside(changes, dims, baseline)
    if above and below:
        return text["versus_mixed"]
    half = len(changes) / 2
    if len(above) > half or len(below) > half:
        return _say(text, "versus_above" if len(above) > half else "versus_below", len(changes))
    if outside := above or below:  # a minority, of two numbers or more
        key = "versus_some_above" if above else "versus_some_below"
        return _say(text, key, len(outside)).format(dims=", ".join(f"z[{dim}]" for dim in outside))
    return _say(text, "versus_inside", len(changes))


def _value_paragraph(value: float, metrics: dict[str, Any], text: dict[str, str]) -> tuple[str, str]:
    rows = [row for row in metrics["study"] if row["value"] == value]
    changes = [row["change"] for row in rows]
    dims = [row["dim"] for row in rows]
    relative = [row["change_vs_base_diversity"] for row in rows]
    ratios = [row["diversity_ratio"] for row in rows]
    weights = [row["weight_ratio"] for row in rows]
    baseline = next(entry for entry in metrics["random_directions"] if entry["value"] == value)
    class_changes = sum(row["class_changes"] for row in rows) if "base_classes" in metrics else None
    blank, total = [row["blank_images"] for row in rows], metrics["num_images"] * len(rows)
    effect = _effect(changes, relative, dims, class_changes, baseline, text, some_blank=sum(blank) > 0)
    effect = _blank_effect(effect, blank, dims, total, text)
    row_state = _rows(ratios, dims, metrics["num_images"], text)
    dim_min, dim_max = dims[changes.index(min(changes))], dims[changes.index(max(changes))]
    paragraph = text["value"].format(
        value=value,
        change_mean=sum(changes) / len(changes),
        span=_range(changes, ".3f", text["span"], alike="", dim_min=dim_min, dim_max=dim_max),
        rel_mean=_percent(sum(relative) / len(relative), CHANGE_THRESHOLDS),
        effect=effect,
        weights=_range(weights, ".2f", text["range"]),
        typical=metrics["typical_wz_norm"],
        weight=_weight(weights, metrics["latent_dim"], text),
        rows_keep=_say(text, "rows_keep", len(dims)),
        diversity=_range(ratios, partial(_percent, thresholds=DIVERSITY_THRESHOLDS), text["range"]),
        rows=row_state,
        rand_mean=baseline["change_mean"],
        rand_range=_range([baseline["change_p5"], baseline["change_p95"]], ".3f", text["range"]),
        versus=_versus(changes, dims, baseline, text),
    )
    if class_changes is not None:
        paragraph += _class_changes(class_changes, total - sum(blank), total, text)
    return paragraph, text["summary_value"].format(value=value, effect=effect, rows=row_state)


def _blank_effect(effect: str, blank: list[int], dims: list[int], total: int, text: dict[str, str]) -> str:
    """``effect``, and how many of the ``total`` images turn nearly blank (``blank`` in the row of each of ``dims``);
    when all of them do, that alone."""
    if sum(blank) == total:
        return text["effect_blank"]
    if sum(blank) == 0:
        return effect
    rows = ", ".join(f"z[{dim}]" for dim, count in zip(dims, blank, strict=True) if count)
    return text["effect_some_blank"].format(effect=effect, blank=sum(blank), total=total, dims=rows)


def _class_changes(changed: int, rest: int, total: int, text: dict[str, str]) -> str:
    """The sentence on how many of the ``rest`` images of ``total`` that are not nearly blank changed class."""
    if rest == 0:
        return text["value_classes_none"]
    if rest == total:
        return _say(text, "value_classes", changed).format(changed=changed, total=total)
    return _say(text, "value_classes_rest", changed).format(changed=changed, rest=rest)


def _onset(dim: int, number: dict[str, Any], text: dict[str, str]) -> str:
    """Where the traversal's change is visible: from the smallest |z[dim]|, measured on both sides, beyond which every
    value is, else at which values (the changes are not printed: compared as measured)."""
    values = number["traversal_values"]
    changes = number["traversal_change_from_0_vs_base_diversity"]
    visible = [value for value, relative in zip(values, changes, strict=True) if relative >= VISIBLE]
    largest = max(abs(value) for value in values)
    if not visible:
        if largest in values and -largest in values:
            return text["onset_never"].format(value=largest)
        return text["onset_never_at"].format(dim=dim, values=", ".join(f"{value:g}" for value in values))
    onset = None
    for size in sorted({abs(value) for value in values}, reverse=True):
        if any(abs(value) >= size and value not in visible for value in values):
            break
        onset = size
    if onset is not None and onset in values and -onset in values:
        return text["onset_at"].format(dim=dim, value=onset)
    key = "onset_measured" if all(value in visible for value in values if value != 0) else "onset_only"
    return text[key].format(dim=dim, values=", ".join(f"{value:g}" for value in sorted(visible)))


def _number_paragraph(dim: int, metrics: dict[str, Any], lang: str, text: dict[str, str]) -> tuple[str, str]:
    number = metrics["numbers"][str(dim)]
    rows = [row for row in metrics["study"] if row["dim"] == dim]
    at_values = ", ".join(
        f"{_percent(row['change_vs_base_diversity'], CHANGE_THRESHOLDS)} ({row['value']:g})" for row in rows
    )
    collapsed = [f"{row['value']:g}" for row in rows if _collapsed(row["diversity_ratio"])]
    blank = [f"{row['value']:g} ({row['blank_images']}/{metrics['num_images']})" for row in rows if row["blank_images"]]
    onset = _onset(dim, number, text)
    paragraph = text["number"].format(
        dim=dim,
        norm=number["weight_norm"],
        norm_rank=_ordinal(number["weight_norm_rank"], lang),
        latent_dim=metrics["latent_dim"],
        sensitivity=number["sensitivity"],
        sens_rank=_ordinal(number["sensitivity_rank"], lang),
        onset=onset,
        at_values=at_values,
        collapse=text["collapse_at"].format(values=", ".join(collapsed)) if collapsed else text["collapse_never"],
        blank=text["blank_at"].format(values=", ".join(blank)) if blank else "",
    )
    table_row = (
        f"| z[{dim}] | {number['weight_norm']:.3f} ({number['weight_norm_rank']}) | "
        f"{number['sensitivity']:.4f} ({number['sensitivity_rank']}) | {onset} |"
    )
    return paragraph, table_row


def _all_numbers_paragraph(metrics: dict[str, Any], text: dict[str, str]) -> str:
    numbers = metrics["all_numbers"]
    sensitivity, random = numbers["sensitivity"], numbers["random_sensitivity"]
    low, high = numbers["random_sensitivity_p5"], numbers["random_sensitivity_p95"]
    inside = sum(low <= value <= high for value in sensitivity) / len(sensitivity)
    return _say(text, "all", metrics["latent_dim"]).format(
        latent_dim=metrics["latent_dim"],
        sensitivities=_range(sensitivity, ".4f", text["range"]),
        s_mean=sum(sensitivity) / len(sensitivity),
        correlation=_correlation(numbers["spearman_sensitivity_vs_weight_norm"], text),
        falls=text["falls_inside" if inside else "falls_outside"],
        num_random=len(random),
        random=_range(random, ".4f", text["range"]),
        r_mean=sum(random) / len(random),
        inside=inside,
        special=text["special_no" if inside >= 0.8 else "special_yes"],
    )


def _correlation(rho: float | None, text: dict[str, str]) -> str:
    """The sentence on ρ, worded by its value as printed; None: too few numbers to measure it."""
    if rho is None:
        return text["correlation_none"].format(least=MIN_CORRELATED)
    rho = round(rho, 2) + 0  # as printed, -0.00 as 0.00
    key = "strong" if rho >= 0.7 else "moderate" if rho >= 0.3 else "weak" if rho > -0.3 else "negative"
    return text["correlation"].format(rho=rho, rho_text=text[f"rho_{key}"])


def _against(sefa_top: float, number_top: float, text: dict[str, str]) -> str:
    """How the top SeFa direction's effect compares with the most sensitive single number's (which is 0 where the
    noise's huge numbers saturate the generator)."""
    if number_top == 0:
        return text["sefa_against_none"]
    return text["sefa_against"].format(times=sefa_top / number_top, number_top=number_top)


def _sefa_paragraph(metrics: dict[str, Any], text: dict[str, str]) -> str:
    sefa = metrics["sefa"]
    chosen = ", ".join(f"z[{dim}]: {share:.0%}" for dim, share in sefa["column_share"].items())
    r2 = sefa["column_energy_r2"]
    if r2 is None:
        explained = text["sefa_r2_none"].format(least=MIN_CORRELATED)
    else:
        explained = _say(text, "sefa_r2", sefa["count"]).format(r2=r2)
    return _say(text, "sefa", sefa["count"]).format(
        count=sefa["count"],
        energy=sefa["energy_share"],
        even=sefa["count"] / len(sefa["singular_values"]),
        sefa_top=sefa["sensitivity"][0],
        against=_against(sefa["sensitivity"][0], sefa["max_number_sensitivity"], text),
        share=sefa["column_share_mean"],
        chosen=chosen,
        explained=explained,
    )


def _setup(metrics: dict[str, Any], text: dict[str, str]) -> str:
    """The report's opening paragraph: what was studied, on which checkpoint, and the thresholds of its words."""
    count = len(metrics["dims"])
    values = ", ".join(f"{value:g}" for value in metrics["values"])
    return text["setup"].format(
        **{key: metrics[key] for key in ("checkpoint", "model", "latent_dim", "num_images", "noise", "device")},
        epochs=metrics["epochs_trained"],
        plural="" if metrics["epochs_trained"] == 1 else "s",
        batches=metrics["batches_trained"],
        studied=_say(text, "studied", count).format(dims=metrics["dims"], values=values),
        visible=VISIBLE,
        large=LARGE,
        different=text["different"].format(times=DIFFERENT) if count > 1 else "",
        same=SAME_DIVERSITY,
        more=MORE_DIVERSITY,
        collapsed=COLLAPSED,
        base_diversity=metrics["base_diversity"],
        blank_share=BLANK_SHARE,
        blank_level=BLANK_LEVEL,
        seconds=metrics["seconds"],
        classifier=text["classifier_time"].format(seconds=metrics["classifier_seconds"])
        if "classifier_seconds" in metrics
        else "",
        eval_mode=text["eval_bn" if metrics["has_batchnorm"] else "eval_no_bn"],
    )


def _study_table(metrics: dict[str, Any], text: dict[str, str]) -> str:
    """The lab's grid as a Markdown table: one row per number and value, with its nearly blank images and, when
    measured, its class changes."""
    has_classes = "base_classes" in metrics
    columns = 8 if has_classes else 7
    head = text["table_head"] + text["blank_head"] + (text["class_head"] if has_classes else "")
    table = [head, "|---" * columns + "|"] + [
        f"| {row['value']:g} | z[{row['dim']}] | {row['change']:.4f} |"
        f" {_percent(row['change_vs_base_diversity'], CHANGE_THRESHOLDS)} |"
        f" {_percent(row['diversity_ratio'], DIVERSITY_THRESHOLDS)} | {row['weight_ratio']:.2f} |"
        f" {row['blank_images']} / {metrics['num_images']} |"
        + (f" {row['class_changes']} / {len(row['classes'])} |" if has_classes else "")
        for row in metrics["study"]
    ]
    return "\n".join(table)


def build_report(metrics: dict[str, Any], models_text: str, figures: list[str], has_loss_curve: bool, lang: str) -> str:
    """The report as Markdown, in ``lang`` (``en`` or ``zh``)."""
    text = TEXT[lang]
    count = len(metrics["dims"])
    parts = [text["title"], _setup(metrics, text), text["h_models"], f"```\n{models_text}```", text["h_loss"]]
    parts.append("![loss curve](loss_curve.png)" if has_loss_curve else text["no_loss"])
    num_images, rows = metrics["num_images"], count * len(metrics["values"])
    parts += [text["h_base"].format(num_images=num_images), "![base](base.png)"]
    parts += [text["h_grid"].format(rows=rows, num_images=num_images), text["grid_intro"]]
    parts += [f"![{name}]({name})" for name in figures if name.startswith("value_")] + ["![grid](latent_grid.png)"]
    parts += [text["h_table"], _study_table(metrics, text), text["h_values"]]
    summary = []
    for value in metrics["values"]:
        paragraph, line = _value_paragraph(value, metrics, text)
        parts.append(paragraph)
        summary.append(line)
    traversal = metrics["numbers"][str(metrics["dims"][0])]["traversal_values"]
    figure_traversal = _say(text, "figure_traversal", count).format(values=", ".join(f"{v:g}" for v in traversal))
    parts += [text["h_numbers"], figure_traversal, "![traversal](traversal.png)"]
    number_rows = [text["numbers_table_head"]]
    for dim in metrics["dims"]:
        paragraph, row = _number_paragraph(dim, metrics, lang, text)
        parts.append(paragraph)
        number_rows.append(row)
    parts.append("\n".join(number_rows))
    h_all = _say(text, "h_all", metrics["latent_dim"]).format(latent_dim=metrics["latent_dim"])
    parts += [h_all, _all_numbers_paragraph(metrics, text)]
    parts += [text["h_sefa"], _sefa_paragraph(metrics, text)]
    sefa_count = metrics["sefa"]["count"]
    parts += [_say(text, "figure_sefa", sefa_count).format(count=sefa_count), "![sefa](sefa.png)"]
    parts += [text["h_summary"], "\n".join(summary)]
    return "\n\n".join(parts) + "\n"


def write_report(
    metrics: dict[str, Any], models_text: str, figures: list[str], has_loss_curve: bool, lang: str, out_dir: Path
) -> None:
    """Write ``report.md`` and the same report as ``report.html``."""
    report = build_report(metrics, models_text, figures, has_loss_curve, lang)
    (out_dir / "report.md").write_text(report, encoding="utf-8")
    body = markdown.markdown(report, extensions=["tables", "fenced_code"])
    html = (
        f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8"><title>Latent study</title>'
        "<style>body{max-width:60em;margin:auto;font-family:sans-serif}img{max-width:100%}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )
    (out_dir / "report.html").write_text(html, encoding="utf-8")
