"""The papers behind each lens and method, as the app cites them: authors, title, venue, year and arXiv link.

One registry, so a page names the keys it uses and the home page gathers them all.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reference:
    key: str
    authors: str
    title: str
    venue: str
    year: int
    arxiv: str

    @property
    def url(self) -> str:
        return f"https://arxiv.org/abs/{self.arxiv}"

    def markdown(self) -> str:
        return f"{self.authors}. *{self.title}*. {self.venue}, {self.year}. [arXiv:{self.arxiv}]({self.url})"

    def citation(self) -> str:
        """"Luo et al. 2023" (three or more authors), "Zeiler and Fergus 2014" (two)."""
        names = [name.split()[-1] for name in self.authors.replace(" and ", ", ").split(", ")]
        who = names[0] if len(names) == 1 else " and ".join(names) if len(names) == 2 else f"{names[0]} et al."
        return f"{who} {self.year}"

    def short(self) -> str:
        """The citation, linked to the paper."""
        return f"[{self.citation()}]({self.url})"


REFERENCES: dict[str, Reference] = {reference.key: reference for reference in (
    Reference("sia", "Jinqi Luo, Zhaoning Wang, Chen Henry Wu, Dong Huang and Fernando De la Torre",
              "Semantic Image Attack for Visual Model Diagnosis", "arXiv preprint", 2023, "2303.13010"),
    Reference("roi-roa", "Nandish Chattopadhyay, Lionell Yip En Zhi, Bryan Tan Bing Xing and Anupam Chattopadhyay",
              "Spatially Correlated Patterns in Adversarial Images", "arXiv preprint", 2020, "2011.10794"),
    Reference("features", "Andrew Ilyas, Shibani Santurkar, Dimitris Tsipras, Logan Engstrom, Brandon Tran and "
              "Aleksander Madry", "Adversarial Examples Are Not Bugs, They Are Features", "NeurIPS", 2019,
              "1905.02175"),
    Reference("margins", "Jonas Ngnawé, Sabyasachi Sahoo, Yann Pequignot, Frédéric Precioso and Christian Gagné",
              "Detecting Brittle Decisions for Free: Leveraging Margin Consistency in Deep Robust Classifiers",
              "NeurIPS", 2024, "2406.18451"),
    Reference("fgsm", "Ian J. Goodfellow, Jonathon Shlens and Christian Szegedy",
              "Explaining and Harnessing Adversarial Examples", "ICLR", 2015, "1412.6572"),
    Reference("pgd", "Aleksander Madry, Aleksandar Makelov, Ludwig Schmidt, Dimitris Tsipras and Adrian Vladu",
              "Towards Deep Learning Models Resistant to Adversarial Attacks", "ICLR", 2018, "1706.06083"),
    Reference("fgsm-rs", "Eric Wong, Leslie Rice and J. Zico Kolter",
              "Fast is better than free: Revisiting adversarial training", "ICLR", 2020, "2001.03994"),
    Reference("deepfool", "Seyed-Mohsen Moosavi-Dezfooli, Alhussein Fawzi and Pascal Frossard",
              "DeepFool: a simple and accurate method to fool deep neural networks", "CVPR", 2016, "1511.04599"),
    Reference("saliency", "Karen Simonyan, Andrea Vedaldi and Andrew Zisserman",
              "Deep Inside Convolutional Networks: Visualising Image Classification Models and Saliency Maps",
              "ICLR Workshop", 2014, "1312.6034"),
    Reference("occlusion", "Matthew D. Zeiler and Rob Fergus", "Visualizing and Understanding Convolutional Networks",
              "ECCV", 2014, "1311.2901"),
    Reference("smoothgrad", "Daniel Smilkov, Nikhil Thorat, Been Kim, Fernanda Viégas and Martin Wattenberg",
              "SmoothGrad: removing noise by adding noise", "ICML Workshop on Visualization for Deep Learning", 2017,
              "1706.03825"),
    Reference("gradcam", "Ramprasaath R. Selvaraju, Michael Cogswell, Abhishek Das, Ramakrishna Vedantam, Devi Parikh "
              "and Dhruv Batra", "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization",
              "ICCV", 2017, "1610.02391"),
    Reference("integrated-gradients", "Mukund Sundararajan, Ankur Taly and Qiqi Yan",
              "Axiomatic Attribution for Deep Networks", "ICML", 2017, "1703.01365"),
    Reference("cw", "Nicholas Carlini and David Wagner", "Towards Evaluating the Robustness of Neural Networks",
              "IEEE Symposium on Security and Privacy", 2017, "1608.04644"),
    Reference("long-tail", "Kaidi Cao, Colin Wei, Adrien Gaidon, Nikos Arechiga and Tengyu Ma",
              "Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss", "NeurIPS", 2019, "1906.07413"),
    Reference("fashion-mnist", "Han Xiao, Kashif Rasul and Roland Vollgraf",
              "Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine Learning Algorithms", "arXiv preprint",
              2017, "1708.07747"),
)}
